"""Polls every watched symbol at a fixed interval through the failover router.

One task per symbol keeps that symbol's ticks in order; the provider's token bucket (shared
by all symbols) decides how fast requests actually go. Symbols start staggered across the
interval so a large watch list does not queue all at once. While the market is closed
(exchange calendar), nothing is requested, so no quota is burnt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog

from fetcher.market_hours import MarketHours
from fetcher.provider_metrics import observe_quote_lag
from fetcher.providers.router import QuoteRouter
from fetcher.tick_builder import TickBuilder
from fetcher.watchlist import WatchList
from stocktrack_common.health import ReadinessCheck
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import Tick

log = structlog.get_logger(__name__)

CLOSED_RECHECK_SECONDS = 300.0


class PollingSource:
    def __init__(
        self,
        name: str,
        router: QuoteRouter,
        watchlist: WatchList,
        interval_seconds: float,
        market_hours: MarketHours,
        max_batch: int = 500,
    ) -> None:
        self.name = name
        self.router = router
        self.watchlist = watchlist
        self.interval = interval_seconds
        self.market_hours = market_hours
        self.max_batch = max_batch
        self.builder = TickBuilder()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def _sync_tasks(self, stop: asyncio.Event, queue: asyncio.Queue[Tick]) -> None:
        wanted = self.watchlist.symbols
        for symbol in list(self._tasks):
            if symbol not in wanted:
                self._tasks.pop(symbol).cancel()
        new = [s for s in wanted if s not in self._tasks]
        for index, symbol in enumerate(new):
            offset = self.interval * index / max(1, len(new))
            self._tasks[symbol] = asyncio.create_task(self._poll(symbol, offset, stop, queue))

    async def _poll(
        self, symbol: str, offset: float, stop: asyncio.Event, queue: asyncio.Queue[Tick]
    ) -> None:
        await sleep_or_stop(stop, offset)
        while not stop.is_set():
            wait = self.market_hours.seconds_until_open(datetime.now(UTC))
            if wait > 0:
                log.debug("market closed; not polling", symbol=symbol, opens_in_s=round(wait))
                await sleep_or_stop(stop, min(wait, CLOSED_RECHECK_SECONDS))
                continue
            started = time.monotonic()
            quote = await self.router.quote(symbol)
            if quote is not None:
                tick = self.builder.to_tick(quote)
                if tick is not None:
                    await queue.put(tick)
            await sleep_or_stop(stop, self.interval - (time.monotonic() - started))

    async def batches(self, stop: asyncio.Event) -> AsyncIterator[list[Tick]]:
        queue: asyncio.Queue[Tick] = asyncio.Queue()
        await self.watchlist.refresh()
        self.watchlist.changed.clear()
        reloader = asyncio.create_task(self.watchlist.run(stop))
        self._sync_tasks(stop, queue)
        try:
            while not stop.is_set():
                if self.watchlist.changed.is_set():
                    self.watchlist.changed.clear()
                    self._sync_tasks(stop, queue)
                try:
                    first = await asyncio.wait_for(queue.get(), timeout=0.1)
                except TimeoutError:
                    continue
                batch = [first]
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                observe_quote_lag(batch, time.time())
                yield batch
        finally:
            reloader.cancel()
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(reloader, *self._tasks.values(), return_exceptions=True)
            self._tasks.clear()

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        """/readyz fails, naming the setting to fix, while a provider is disabled (a rejected key)."""

        async def providers() -> None:
            disabled = self.router.disabled()
            if disabled:
                raise RuntimeError("; ".join(f"{name}: {why}" for name, why in sorted(disabled.items())))

        return {"providers": providers}

    async def aclose(self) -> None:
        await self.router.aclose()
