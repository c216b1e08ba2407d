"""The close timer still closes a bar at its due time when the event loop wakes it early."""

from __future__ import annotations

import asyncio

import pytest

from stocktrack_common import bar_closing
from stocktrack_common.bar_closing import next_close_ms, sleep_until_close


async def test_an_early_wake_sleeps_again_until_the_due_time(monkeypatch: pytest.MonkeyPatch) -> None:
    interval, grace = 1_000, 20
    now = [10_000_500.0]  # the wall clock, epoch milliseconds
    asked: list[float] = []

    def clock() -> float:
        return now[0] / 1000

    async def early_sleep(stop: asyncio.Event, seconds: float) -> None:
        # A timer that fires 1.5 ms early, as an event loop may (its clock resolution).
        asked.append(seconds)
        now[0] += max(seconds * 1000 - 1.5, 0.2)

    monkeypatch.setattr(bar_closing, "sleep_or_stop", early_sleep)
    due = next_close_ms(now[0], interval, grace)
    woke = await sleep_until_close(asyncio.Event(), interval, grace, clock=clock)
    # It slept again instead of returning before the due time, and returned this bar's due time,
    # not the next bar's.
    assert len(asked) >= 2
    assert due <= woke < due + interval
    assert next_close_ms(woke - 1, interval, grace) == due


async def test_a_stop_ends_the_sleep() -> None:
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(sleep_until_close(stop, 60_000, 20), 1)
