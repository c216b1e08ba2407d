"""Closed bars of the recommender's interval from ticks, by event time.

The arithmetic and the close rule are the one bar model's (stocktrack_common.bars); this module
only decides when a bar closes. A bar covers [bucket, bucket + interval) and closes once its
end plus a grace (BAR_CLOSE_GRACE_MS) has passed: by event time, when a tick of the symbol
stamped that late arrives, or by the wall clock, when the recommender's timer finds it due
(processor.close_due). So a quiet symbol's bar and its signal do not wait for its next tick, and
a replay of the same ticks yields the same bars. A tick of an ended bar still inside its grace
amends it (the bar then waits as `pending` while the next one fills); a tick of a bar already
closed (late, or counted in a bar warmed up from Postgres) is not folded in; it is counted and
skipped.
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
    """The open bars of one symbol: the newest, and the one before while it waits out its grace."""

    def __init__(
        self,
        interval_ms: int,
        current: Bar | None = None,
        closed_through_ms: int = -1,
        *,
        grace_ms: int = 0,
        pending: Bar | None = None,
    ) -> None:
        self.interval_ms = interval_ms
        self.grace_ms = grace_ms
        self.current = current
        # An ended bar still inside its grace: a late tick of its bucket amends it.
        self.pending = pending
        # Buckets at or before this are final (closed here or loaded from history): ticks for them are late.
        self.closed_through_ms = closed_through_ms

    def bucket_of(self, ts_ms: int) -> int:
        return bucket_of(ts_ms, self.interval_ms)

    def add(self, ts_ms: int, price: Decimal, size: int) -> tuple[list[Bar], bool]:
        """Fold in a tick; returns (the bars its time closed, oldest first; whether the tick was used)."""
        bucket = self.bucket_of(ts_ms)
        if bucket <= self.closed_through_ms:
            return [], False
        current, pending = self.current, self.pending
        if current is not None and bucket == current.bucket:
            current.add(ts_ms, price, size)
            return [], True
        if pending is not None and bucket == pending.bucket:
            pending.add(ts_ms, price, size)
            return [], True
        if current is not None and bucket < current.bucket:
            return [], False
        # A later bucket: this tick's time closes what its grace no longer covers.
        closed = self.close_due(ts_ms)
        if self.current is not None:
            if self.pending is not None:
                closed.append(self._close(self.pending))
                self.pending = None
            self.pending = self.current
        self.current = Bar.of_tick(bucket, ts_ms, price, size)
        return closed, True

    def close_due(self, watermark_ms: int, live_from_ms: int | None = None) -> list[Bar]:
        """Close the bars whose end plus grace is at or before `watermark_ms` (event or wall time).

        `live_from_ms` (the wall-clock timer's): a bar that ended before it is not live data but a
        backlog or a replay, whose later ticks may still be on their way; only its own ticks close it,
        so a replay of the same ticks yields the same bars however fast it is read.
        """
        closed: list[Bar] = []
        span = self.interval_ms + self.grace_ms

        def due(bar: Bar) -> bool:
            end = bar.bucket + span
            return end <= watermark_ms and (live_from_ms is None or end >= live_from_ms)

        if self.pending is not None and due(self.pending):
            closed.append(self._close(self.pending))
            self.pending = None
        if self.pending is None and self.current is not None and due(self.current):
            closed.append(self._close(self.current))
            self.current = None
        return closed

    def _close(self, bar: Bar) -> Bar:
        self.closed_through_ms = bar.bucket
        return bar

    def to_state(self) -> dict[str, Any]:
        return {
            "current": None if self.current is None else self.current.to_state(),
            "pending": None if self.pending is None else self.pending.to_state(),
            "closed_through_ms": self.closed_through_ms,
        }

    @classmethod
    def from_state(cls, interval_ms: int, state: dict[str, Any], *, grace_ms: int = 0) -> BarBuilder:
        current, pending = state.get("current"), state.get("pending")
        return cls(
            interval_ms,
            None if current is None else _bar_from_state(current),
            int(state["closed_through_ms"]),
            grace_ms=grace_ms,
            pending=None if pending is None else _bar_from_state(pending),
        )
