"""When a live bar closes: at its end plus a grace, by event time or by the wall clock.

The arithmetic and the order rule are the one bar model's (stocktrack_common.bars); this module
only decides when a bar closes, for every consumer of the live tick streams that closes bars on
a timer (the recommender's bars of its interval, the streamer's 1-minute `bar` events). A bar
covers [bucket, bucket + interval) and closes once its end plus a grace (BAR_CLOSE_GRACE_MS) has
passed: by event time, when a tick of the symbol stamped that late arrives, or by the wall clock,
when the consumer's timer (woken at `next_close_ms`) finds it due. So a quiet symbol's bar does
not wait for its next tick, and a replay of the same ticks yields the same bars. A tick of an
ended bar still inside its grace amends it (the bar then waits as `pending` while the next one
fills); a tick of a bar already closed (late, or counted in a bar loaded from history) is not
folded in: the caller counts and skips it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from stocktrack_common.bars import Bar, bucket_of
from stocktrack_common.lifecycle import sleep_or_stop


def next_close_ms(now_ms: float, interval_ms: int, grace_ms: int) -> int:
    """When a close timer wakes next: the end plus grace of the bar that ends after `now_ms - grace_ms`."""
    return bucket_of(int(now_ms) - grace_ms, interval_ms) + interval_ms + grace_ms


async def sleep_until_close(
    stop: asyncio.Event, interval_ms: int, grace_ms: int, clock: Callable[[], float] = time.time
) -> int:
    """Sleep until the next bar end plus grace (or `stop`); returns the wall time then, epoch ms.

    An event loop may fire a timer up to its clock resolution early (uvloop: a millisecond).
    A close run then finds nothing due yet, and the next turn aims at the bar after, so the
    bars of that instant waited for their symbols' next ticks instead: sleep again until the
    wall clock has reached the due time.
    """
    return await sleep_until_ms(stop, next_close_ms(clock() * 1000, interval_ms, grace_ms), clock)


async def sleep_until_ms(stop: asyncio.Event, due_ms: float, clock: Callable[[], float] = time.time) -> int:
    """Sleep until the wall clock reaches `due_ms` (or `stop`), however early the loop wakes; returns then."""
    now_ms = clock() * 1000
    while now_ms < due_ms and not stop.is_set():
        await sleep_or_stop(stop, (due_ms - now_ms) / 1000)
        now_ms = clock() * 1000
    return int(now_ms)


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
        closed = self.due(watermark_ms, live_from_ms)
        for bar in closed:
            self._close(bar)
            if bar is self.pending:
                self.pending = None
            else:
                self.current = None
        return closed

    def due(self, watermark_ms: int, live_from_ms: int | None = None) -> list[Bar]:
        """The bars `close_due` would close at `watermark_ms`, oldest first, without closing them."""
        span = self.interval_ms + self.grace_ms

        def due(bar: Bar) -> bool:
            end = bar.bucket + span
            return end <= watermark_ms and (live_from_ms is None or end >= live_from_ms)

        if self.pending is not None:
            if not due(self.pending):
                return []
            if self.current is not None and due(self.current):
                return [self.pending, self.current]
            return [self.pending]
        if self.current is not None and due(self.current):
            return [self.current]
        return []

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
    def from_state(
        cls,
        interval_ms: int,
        state: Mapping[str, Any],
        *,
        grace_ms: int = 0,
        bar_from_state: Callable[[Mapping[str, Any]], Bar] = Bar.from_state,
    ) -> BarBuilder:
        """Restore `to_state()`; `bar_from_state` lets a caller read older forms of its saved bars."""
        current, pending = state.get("current"), state.get("pending")
        return cls(
            interval_ms,
            None if current is None else bar_from_state(current),
            int(state["closed_through_ms"]),
            grace_ms=grace_ms,
            pending=None if pending is None else bar_from_state(pending),
        )
