"""The token bucket keeps every provider under its published limit, whatever the number of symbols."""

from __future__ import annotations

import asyncio

from fetcher.rate_limit import TokenBucket
from tests.fetcher.conftest import metric
from tests.fetcher.fakes import FakeClock


def max_in_any_window(times: list[float], window: float) -> int:
    """Largest number of events in any half-open window [t, t + window)."""
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= window - 1e-9:
            left += 1
        best = max(best, right - left + 1)
    return best


async def test_many_symbols_never_exceed_five_per_minute() -> None:
    clock = FakeClock()
    bucket = TokenBucket("limit-test", requests_per_minute=5, clock=clock)
    symbols = [f"S{i}" for i in range(25)]
    granted: list[tuple[float, str]] = []
    horizon = clock.now + 10 * 60

    async def poll(symbol: str) -> None:
        while clock.now < horizon:
            await bucket.acquire()
            if clock.now < horizon:
                granted.append((clock.now, symbol))

    waits_before = metric("stocktrack_fetcher_rate_limit_waits_total", provider="limit-test")
    await asyncio.gather(*(poll(s) for s in symbols))

    times = [t for t, _ in granted]
    assert max_in_any_window(times, 60.0) <= 5
    # The limit is also used, not just respected: 10 minutes at 5/min is about 50 requests.
    assert 49 <= len(times) <= 51
    # Every symbol got its turn (the lock queues waiters fairly).
    assert {s for _, s in granted} == set(symbols)
    assert metric("stocktrack_fetcher_rate_limit_waits_total", provider="limit-test") > waits_before


async def test_burst_allows_short_bursts_but_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket("burst-test", requests_per_minute=60, burst=10, clock=clock)
    times = []
    for _ in range(70):
        await bucket.acquire()
        times.append(clock.now)
    assert times[9] == times[0]  # the first ten go at once
    assert max_in_any_window(times, 60.0) <= 10 + 60


async def test_max_wait_refuses_instead_of_sleeping() -> None:
    clock = FakeClock()
    bucket = TokenBucket("refuse-test", requests_per_minute=5, clock=clock)
    assert await bucket.acquire(max_wait=0.0)
    start = clock.now
    assert not await bucket.acquire(max_wait=1.0)
    assert clock.now == start  # nothing slept, nothing taken
    clock.now += 12.0
    assert await bucket.acquire(max_wait=0.0)


async def test_a_busy_queue_is_waited_for_within_max_wait() -> None:
    # 600/min: a token every 0.1 s. While one caller sleeps for its token, a second caller with a
    # 1 s budget queues behind it and gets the next token instead of failing over at once.
    bucket = TokenBucket("q", 600)
    assert await bucket.acquire()
    first = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)  # the first waiter now holds the queue and sleeps for its token
    assert bucket._lock.locked()
    assert await bucket.acquire(max_wait=1.0)
    assert await first
    # A budget shorter than the queue still refuses, and takes nothing.
    blocker = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    assert not await bucket.acquire(max_wait=0.01)
    assert await blocker
