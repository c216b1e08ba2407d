"""Token bucket per provider, shared by every symbol that provider serves.

A free-tier limit such as "5 requests per minute" must hold in every window, so the default
burst is one token: requests are spaced evenly at the limit rate and no 60-second window ever
sees more than five. Waiters queue on a lock, so the order of requests is fair and only one
waiter sleeps at a time (which also keeps an injected fake clock exact).
"""

from __future__ import annotations

import asyncio

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_metrics import RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS


class TokenBucket:
    def __init__(
        self,
        provider: str,
        requests_per_minute: float,
        burst: int = 1,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.provider = provider
        self.rate_per_second = requests_per_minute / 60.0
        self.capacity = float(burst)
        self.clock = clock
        self._tokens = float(burst)
        self._updated = clock.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_second)
        self._updated = now

    def wait_estimate(self) -> float:
        """Seconds until a token would be free for a new caller (ignores callers already queued)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate_per_second)

    async def acquire(self, max_wait: float | None = None) -> bool:
        """Take one token, sleeping for it; False (nothing taken) if that would exceed `max_wait`.

        `max_wait` covers the whole wait: queueing behind other waiters and then for the token.
        A caller that finds the queue busy waits its turn instead of giving up at once, so a
        momentary queue does not push it onto another (scarcer) provider.
        """
        if max_wait is None or not self._lock.locked():
            await self._lock.acquire()
        else:
            deadline = self.clock.monotonic() + max_wait
            try:
                await asyncio.wait_for(self._lock.acquire(), timeout=max_wait)
            except TimeoutError:
                return False
            max_wait = max(0.0, deadline - self.clock.monotonic())
        try:
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate_per_second
                if max_wait is not None and wait > max_wait:
                    return False
                RATE_LIMIT_WAITS.labels(self.provider).inc()
                RATE_LIMIT_WAIT_SECONDS.labels(self.provider).inc(wait)
                await self.clock.sleep(wait)
                self._refill()
            self._tokens -= 1.0
            return True
        finally:
            self._lock.release()
