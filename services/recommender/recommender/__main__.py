"""`python -m recommender` runs the streaming service; `python -m recommender train ...` trains a model."""

from __future__ import annotations

import sys

from recommender.app import create_app
from recommender.settings import RecommenderSettings
from stocktrack_common.gc_tuning import tune_collector
from stocktrack_common.lifecycle import run_main
from stocktrack_common.runtime import run_worker

# A full collection walked every object the imports made (numpy, pandas, scikit-learn: ~190,000)
# and took 300 ms on this 2-core machine while it stopped the close timer; frozen, the imports
# are never walked again. A full collection then waits for 100 middle-generation ones, not 10:
# the states of 500 symbols are long-lived too.
GC_THRESHOLDS = (1_000, 10, 100)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train":
        from recommender.train_cli import main as train_main

        return train_main(args[1:])
    settings = RecommenderSettings()
    tune_collector(GC_THRESHOLDS)
    return run_main(lambda: run_worker(settings, "recommender", create_app(settings)))


if __name__ == "__main__":
    sys.exit(main())
