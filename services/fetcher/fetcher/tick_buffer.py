"""Holds fetched ticks until Redis takes them, so a Redis outage costs neither the process nor,
within a bound, the data.

The source and the publisher run apart: the source puts its batches here, and one loop publishes
them in order. While Redis answers, a full buffer makes the source wait (plain backpressure, e.g.
a replay at full speed). While Redis is unreachable the source keeps fetching: its ticks queue,
oldest first, up to `max_ticks`; beyond that the oldest are dropped and counted in
`stocktrack_fetcher_ticks_dropped_total{reason="buffer_full"}`. The newest prices are the ones a
tracker must show when Redis returns, and a gap can be refilled with `stocktrack backfill`.

Publishing retries with capped, jittered backoff for as long as the outage lasts; the readiness
check fails from the first failed attempt to the next success. On shutdown the buffer is flushed
for at most `shutdown_flush_seconds`; what is still held then is counted as dropped (`shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence

import structlog
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from fetcher.tick_publisher import Published, TickPublisher
from stocktrack_common.backoff import backoff_delay
from stocktrack_common.health import Heartbeat

log = structlog.get_logger(__name__)

DROPPED = Counter(
    "stocktrack_fetcher_ticks_dropped_total",
    "Fetched ticks never published: buffer full during a Redis outage, or still held at shutdown",
    ["reason"],
)
BUFFERED = Gauge("stocktrack_fetcher_ticks_buffered", "Fetched ticks waiting to be published")
PUBLISH_FAILURES = Counter(
    "stocktrack_fetcher_publish_failures_total", "Publish attempts that Redis did not acknowledge"
)

# Anything from Redis (unreachable, LOADING, OOM, READONLY after a failover) or the socket is
# retried: none of it is the ticks' fault, and exiting would lose everything buffered.
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


class PublisherUnavailable(RuntimeError):
    """The readiness check's error while publishing fails."""


class TickBuffer:
    def __init__(
        self,
        publisher: TickPublisher,
        *,
        max_ticks: int,
        chunk_ticks: int = 2000,
        retry_base: float = 0.2,
        retry_cap: float = 5.0,
        shutdown_flush_seconds: float = 10.0,
    ) -> None:
        self.publisher = publisher
        self.max_ticks = max_ticks
        self.chunk_ticks = chunk_ticks
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.shutdown_flush_seconds = shutdown_flush_seconds
        self.published = 0
        self.dropped: dict[str, int] = {}
        self.failing_since: float | None = None
        self._queue: deque[Published] = deque()
        self._in_flight: list[Published] = []
        self._has_ticks = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()

    def __len__(self) -> int:
        return len(self._queue) + len(self._in_flight)

    async def put(self, batch: Sequence[Published]) -> None:
        """Queue a batch; waits for room while Redis answers, drops the oldest while it does not."""
        while len(self) >= self.max_ticks and self.failing_since is None:
            self._has_room.clear()
            with contextlib.suppress(TimeoutError):
                # Re-checked every second: an outage starting meanwhile turns waiting into dropping.
                await asyncio.wait_for(self._has_room.wait(), timeout=1.0)
        self._queue.extend(batch)
        overflow = min(len(self) - self.max_ticks, len(self._queue))
        if overflow > 0:
            for _ in range(overflow):
                self._queue.popleft()
            self._count_dropped("buffer_full", overflow)
        BUFFERED.set(len(self))
        self._has_ticks.set()

    def wake(self) -> None:
        """Let `drain` notice that the source has finished."""
        self._has_ticks.set()

    async def check(self) -> None:
        """Readiness: fails while the last publish attempt failed."""
        if self.failing_since is not None:
            raise PublisherUnavailable(
                f"cannot publish for {time.monotonic() - self.failing_since:.1f}s; {len(self)} ticks buffered"
            )

    async def drain(self, fetching: asyncio.Task[None], stop: asyncio.Event, heartbeat: Heartbeat) -> None:
        """Publish until the source has finished and everything is out (or shutdown's flush time is up)."""
        attempt = 0
        flush_deadline: float | None = None
        while True:
            heartbeat.beat()
            if stop.is_set() and flush_deadline is None:
                flush_deadline = time.monotonic() + self.shutdown_flush_seconds
            if flush_deadline is not None and time.monotonic() >= flush_deadline:
                self.discard("shutdown")
                return
            if not self._in_flight:
                if not self._queue:
                    if fetching.done():
                        return
                    self._has_ticks.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._has_ticks.wait(), timeout=0.5)
                    continue
                count = min(self.chunk_ticks, len(self._queue))
                self._in_flight = [self._queue.popleft() for _ in range(count)]
            try:
                await self.publisher.publish(self._in_flight)
            except PUBLISH_ERRORS as exc:
                PUBLISH_FAILURES.inc()
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                delay = backoff_delay(attempt, self.retry_base, self.retry_cap)
                attempt += 1
                log.warning(
                    "publish failed; ticks stay buffered",
                    error=f"{type(exc).__name__}: {exc}",
                    buffered=len(self),
                    delay_s=round(delay, 3),
                )
                await asyncio.sleep(delay if flush_deadline is None else min(delay, 0.5))
                continue
            self.published += len(self._in_flight)
            self._in_flight = []
            attempt = 0
            if self.failing_since is not None:
                log.info(
                    "publishing again",
                    outage_s=round(time.monotonic() - self.failing_since, 1),
                    buffered=len(self),
                )
                self.failing_since = None
            BUFFERED.set(len(self))
            self._has_room.set()

    def discard(self, reason: str) -> None:
        """Give up on everything held, counting it as dropped for `reason`."""
        held = len(self)
        if held:
            self._count_dropped(reason, held)
            log.warning("ticks dropped", reason=reason, count=held)
        self._queue.clear()
        self._in_flight = []
        BUFFERED.set(0)
        self._has_room.set()

    def _count_dropped(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        DROPPED.labels(reason).inc(count)
