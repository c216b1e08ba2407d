"""`python -m janitor <task>` and `stocktrack janitor <task>`: parse, run, exit non-zero on failure."""

from __future__ import annotations

import argparse

import psycopg
import structlog
from redis.exceptions import RedisError

from janitor.app import TASKS, create_app, expand
from janitor.settings import JanitorSettings
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.lifecycle import run_main
from stocktrack_common.ops_args import non_negative_seconds

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
        type=non_negative_seconds,
        metavar="SECONDS",
        help="wait this long for a running task's lock instead of skipping it (default: LOCK_WAIT_SECONDS)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = JanitorSettings()
    if args.wait_lock is not None:
        settings = settings.model_copy(update={"lock_wait_seconds": args.wait_lock})
    configure_logging("janitor", settings.log_level, settings.log_format)
    janitor = create_app(settings)

    async def run() -> int:
        try:
            reports = await janitor.run(expand(args.task), dry_run=args.dry_run)
        except (OSError, RedisError, psycopg.Error) as exc:
            # The servers could not be reached (after CONNECT_ATTEMPTS): an expected failure, so one
            # readable line rather than a traceback; the CronJob still fails and is retried.
            log.error("janitor run failed", task=args.task, error=str(exc).strip().splitlines()[0])
            return 1
        return 1 if any(r.status == "failed" for r in reports) else 0

    return run_main(run)
