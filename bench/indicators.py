"""Per-value cost of the incremental indicators beside the vectorised batch functions.

Feeds the same random walk (1M values by default) through SMA(50), EMA(12), RSI(14) and
MACD(12, 26, 9), once value by value through the state machines (what the recommender does per
closed bar) and once through the numpy batch functions (what the api and training do), and prints
both timings and their ratio. Both runs happen here, on this machine, so the ratio is meaningful
even where the absolute figures are not.

Usage: python bench/indicators.py [--values N] [--seed S]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from stocktrack_common import indicators as ind


def time_incremental(values: list[float], factory: Callable[[], object]) -> float:
    machine = factory()
    update = machine.update  # type: ignore[attr-defined]
    start = time.perf_counter()
    for value in values:
        update(value)
    return time.perf_counter() - start


def time_batch(values: np.ndarray, function: Callable[[np.ndarray], object], repeats: int = 3) -> float:
    """Best of a few runs: a single vectorised call is short enough for page faults to dominate."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(values)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    array = np.abs(100.0 + np.cumsum(rng.normal(0.0, 0.1, args.values))) + 1.0
    values = array.tolist()
    cases: list[tuple[str, Callable[[], object], Callable[[np.ndarray], object]]] = [
        ("SMA(50)", lambda: ind.SMA(50), lambda a: ind.sma(a, 50)),
        ("EMA(12)", lambda: ind.EMA(12), lambda a: ind.ema(a, 12)),
        ("RSI(14)", lambda: ind.RSI(14), lambda a: ind.rsi(a, 14)),
        ("MACD(12,26,9)", lambda: ind.MACD(12, 26, 9), lambda a: ind.macd(a, 12, 26, 9)),
    ]
    print(f"{args.values:,} values per indicator")
    print(
        f"{'indicator':<15}{'incremental s':>14}{'ns/value':>10}{'batch s':>10}{'ns/value':>10}{'ratio':>8}"
    )
    total_inc = total_batch = 0.0
    for _, factory, batch in cases:
        time_incremental(values[:10_000], factory)
        batch(array[:10_000])
    for name, factory, batch in cases:
        inc = time_incremental(values, factory)
        bat = time_batch(array, batch)
        total_inc += inc
        total_batch += bat
        print(
            f"{name:<15}{inc:>14.3f}{inc / args.values * 1e9:>10.0f}{bat:>10.3f}"
            f"{bat / args.values * 1e9:>10.0f}{inc / bat:>7.1f}x"
        )
    print(
        f"{'all four':<15}{total_inc:>14.3f}{total_inc / args.values * 1e9:>10.0f}{total_batch:>10.3f}"
        f"{total_batch / args.values * 1e9:>10.0f}{total_inc / total_batch:>7.1f}x"
    )
    print(f"per tick, all four incremental updates: {total_inc / args.values * 1e6:.2f} us")


if __name__ == "__main__":
    main()
