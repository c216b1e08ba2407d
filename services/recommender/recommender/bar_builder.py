"""Closed bars of the recommender's interval from ticks, by event time.

The arithmetic and the close rule are the one bar model's (stocktrack_common.bars); this module
only decides when a bar closes. A bar covers [bucket, bucket + interval). It closes when the
first tick of a later bucket arrives: event time, not the wall clock, so replaying the same
ticks always yields the same bars and signals, and ticks arriving out of order within their
bucket give the bar the writer stores. A tick older than the open bar (late, or already counted
in a bar warmed up from Postgres) is not folded into a closed bar; it is counted and skipped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from recommender.features import BarValues
from stocktrack_common.bars import Bar, bucket_of


def bar_values(bar: Bar) -> BarValues:
    return BarValues(float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume))


def _bar_from_state(state: dict[str, Any]) -> Bar:
    if "bucket_ms" in state:
        # Checkpoints written before the shared bar model: no tick times, so the open bar's open
        # and close are pinned to its start and any later tick of the bucket may replace the close.
        bucket = int(state["bucket_ms"])
        return Bar.from_state({**state, "bucket": bucket, "first_ts": bucket, "last_ts": bucket})
    return Bar.from_state(state)


class BarBuilder:
    """The open bar of one symbol."""

    def __init__(self, interval_ms: int, current: Bar | None = None, closed_through_ms: int = -1) -> None:
        self.interval_ms = interval_ms
        self.current = current
        # Buckets at or before this are final (closed here or loaded from history): ticks for them are late.
        self.closed_through_ms = closed_through_ms

    def bucket_of(self, ts_ms: int) -> int:
        return bucket_of(ts_ms, self.interval_ms)

    def add(self, ts_ms: int, price: Decimal, size: int) -> tuple[Bar | None, bool]:
        """Fold in a tick; returns (the bar it closed or None, whether the tick was used)."""
        bucket = self.bucket_of(ts_ms)
        current = self.current
        if bucket <= self.closed_through_ms or (current is not None and bucket < current.bucket):
            return None, False
        if current is not None and bucket == current.bucket:
            current.add(ts_ms, price, size)
            return None, True
        self.current = Bar.of_tick(bucket, ts_ms, price, size)
        if current is not None:
            self.closed_through_ms = current.bucket
        return current, True

    def to_state(self) -> dict[str, Any]:
        return {
            "current": None if self.current is None else self.current.to_state(),
            "closed_through_ms": self.closed_through_ms,
        }

    @classmethod
    def from_state(cls, interval_ms: int, state: dict[str, Any]) -> BarBuilder:
        current = state.get("current")
        return cls(
            interval_ms,
            None if current is None else _bar_from_state(current),
            int(state["closed_through_ms"]),
        )
