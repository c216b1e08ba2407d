"""`python -m fetcher`: settings from the environment, then the worker runtime."""

from __future__ import annotations

import sys

from fetcher.app import create_app
from fetcher.providers.registry import build_source
from fetcher.settings import FetcherSettings
from stocktrack_common.lifecycle import run_main
from stocktrack_common.runtime import run_worker


def main() -> int:
    settings = FetcherSettings()
    source = build_source(settings)
    checks = source.readiness_checks() if hasattr(source, "readiness_checks") else {}
    return run_main(
        lambda: run_worker(settings, "fetcher", create_app(settings, source), needs_db=False, checks=checks)
    )


if __name__ == "__main__":
    sys.exit(main())
