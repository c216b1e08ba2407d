"""`python -m janitor <task> [--dry-run]`: the CronJobs' entry point."""

from __future__ import annotations

import sys

from janitor.cli import main as cli_main
from stocktrack_common.cli import run_command


def main() -> int:
    return run_command("janitor", cli_main, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
