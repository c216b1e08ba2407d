"""`python -m recommender` runs the streaming service; `python -m recommender train ...` trains a model."""

from __future__ import annotations

import sys

from recommender.app import create_app
from recommender.settings import RecommenderSettings
from stocktrack_common.lifecycle import run_main
from stocktrack_common.runtime import run_worker


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train":
        from recommender.train_cli import main as train_main

        return train_main(args[1:])
    settings = RecommenderSettings()
    return run_main(lambda: run_worker(settings, "recommender", create_app(settings)))


if __name__ == "__main__":
    sys.exit(main())
