"""`python -m alerts`: settings from the environment, then the worker runtime."""

from __future__ import annotations

import sys

from alerts.app import create_app
from alerts.settings import AlertsSettings
from stocktrack_common.lifecycle import run_main
from stocktrack_common.runtime import run_worker


def main() -> int:
    settings = AlertsSettings()
    return run_main(lambda: run_worker(settings, "alerts", create_app(settings)))


if __name__ == "__main__":
    sys.exit(main())
