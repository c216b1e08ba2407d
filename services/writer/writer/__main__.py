"""`python -m writer`: settings from the environment, then the worker runtime."""

from __future__ import annotations

import sys

from stocktrack_common.lifecycle import run_main
from stocktrack_common.runtime import run_worker
from writer.app import POOL_REUSE_UNCHECKED_SECONDS, create_app
from writer.settings import WriterSettings


def main() -> int:
    settings = WriterSettings()
    return run_main(
        lambda: run_worker(
            settings,
            "writer",
            create_app(settings),
            pool_reuse_unchecked_seconds=POOL_REUSE_UNCHECKED_SECONDS,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
