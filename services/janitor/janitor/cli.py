"""`python -m janitor <task>` and `stocktrack janitor <task>`: parse, run, exit non-zero on failure."""

from __future__ import annotations

import argparse

import structlog

from janitor.app import TASKS, create_app, expand
from janitor.settings import JanitorSettings
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.lifecycle import run_main

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stocktrack janitor",
        description="Database and stream upkeep; settings come from the environment (see the README).",
    )
    parser.add_argument("task", choices=[*TASKS, "all"], help="what to do; 'all' runs every task in order")
    parser.add_argument("--dry-run", action="store_true", help="log what would be done, change nothing")
    parser.add_argument(
        "--wait-lock",
        type=float,
        metavar="SECONDS",
        help="wait this long for a running task's lock instead of skipping it (default: LOCK_WAIT_SECONDS)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = JanitorSettings()
    if args.wait_lock is not None:
        settings = settings.model_copy(update={"lock_wait_seconds": max(0.0, args.wait_lock)})
    configure_logging("janitor", settings.log_level, settings.log_format)
    janitor = create_app(settings)

    async def run() -> int:
        try:
            reports = await janitor.run(expand(args.task), dry_run=args.dry_run)
        except Exception:
            # Reaching the database failed before any task could start: the CronJob must fail.
            log.exception("janitor run failed", task=args.task)
            return 1
        return 1 if any(r.status == "failed" for r in reports) else 0

    return run_main(run)
