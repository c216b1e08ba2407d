"""`python -m fetcher`: settings from the environment, then the worker runtime."""

from __future__ import annotations

import sys

from fetcher.app import create_app
from fetcher.settings import FetcherSettings
from stocktrack_common.lifecycle import run_main
from stocktrack_common.worker_runtime import run_worker


def main() -> int:
    settings = FetcherSettings()
    return run_main(lambda: run_worker(settings, "fetcher", create_app(settings), needs_db=False))


if __name__ == "__main__":
    sys.exit(main())
