"""Closed bars from ticks, by event time.

A bar covers [bucket, bucket + interval). It closes when the first tick of a later bucket
arrives: event time, not the wall clock, so replaying the same ticks always yields the same bars
and signals. A tick older than the open bar (late, or already counted in a bar warmed up from
Postgres) is not folded into a closed bar; it is counted and skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from recommender.features import BarValues


@dataclass(slots=True)
class Bar:
    bucket_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int

    def values(self) -> BarValues:
        return BarValues(
            float(self.open), float(self.high), float(self.low), float(self.close), float(self.volume)
        )

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("open", "high", "low", "close"):
            data[key] = str(data[key])
        return data

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Bar:
        return cls(
            bucket_ms=int(state["bucket_ms"]),
            open=Decimal(state["open"]),
            high=Decimal(state["high"]),
            low=Decimal(state["low"]),
            close=Decimal(state["close"]),
            volume=int(state["volume"]),
            trades=int(state["trades"]),
        )


class BarBuilder:
    """The open bar of one symbol."""

    def __init__(self, interval_ms: int, current: Bar | None = None, closed_through_ms: int = -1) -> None:
        self.interval_ms = interval_ms
        self.current = current
        # Buckets at or before this are final (closed here or loaded from history): ticks for them are late.
        self.closed_through_ms = closed_through_ms

    def bucket_of(self, ts_ms: int) -> int:
        return ts_ms - ts_ms % self.interval_ms

    def add(self, ts_ms: int, price: Decimal, size: int) -> tuple[Bar | None, bool]:
        """Fold in a tick; returns (the bar it closed or None, whether the tick was used)."""
        bucket = self.bucket_of(ts_ms)
        current = self.current
        if bucket <= self.closed_through_ms or (current is not None and bucket < current.bucket_ms):
            return None, False
        if current is not None and bucket == current.bucket_ms:
            current.high = max(current.high, price)
            current.low = min(current.low, price)
            current.close = price
            current.volume += size
            current.trades += 1
            return None, True
        self.current = Bar(bucket, price, price, price, price, size, 1)
        if current is not None:
            self.closed_through_ms = current.bucket_ms
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
            interval_ms, None if current is None else Bar.from_state(current), int(state["closed_through_ms"])
        )
