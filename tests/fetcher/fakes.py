"""Test doubles shared by the fetcher tests."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Virtual time: sleeping advances the clock at once, so minutes of rate limiting take milliseconds.

    Exact for the token bucket because its waiters sleep one at a time under its lock.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
