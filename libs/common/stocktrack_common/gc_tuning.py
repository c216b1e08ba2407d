"""The garbage collector of a long-running service: its startup heap frozen, thresholds of its own.

A service's imports (pydantic schemas, aiohttp, psycopg; numpy, pandas and scikit-learn in the
recommender) leave a heap that lives as long as the process, and every full collection walked
all of it: 48-300 ms on a 2-core machine, during which nothing else ran. Frozen, it is never
walked again. What each service keeps alive differs, so each sets its own thresholds, with its
reasons, beside its entry point.
"""

from __future__ import annotations

import gc


def tune_collector(thresholds: tuple[int, int, int]) -> None:
    """Freeze everything alive now out of every later collection, then set `thresholds`."""
    gc.freeze()
    gc.set_threshold(*thresholds)
