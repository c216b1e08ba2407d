"""A seeded market simulator, the default source: no API key, no network, repeatable.

Prices follow geometric Brownian motion with per-symbol drift and volatility, plus rare
jumps; trade sizes are mostly round lots with a heavy tail. The same seed and symbols give
the same price path, which is what tests and demos need.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from fetcher.watchlist import WatchList
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import Tick

SECONDS_PER_YEAR = 252 * 6.5 * 3600


@dataclass
class _SymbolState:
    price: float
    drift: float
    volatility: float
    last_ts: int


class SimMarket:
    """Deterministic price generator; `step` advances every symbol by one tick.

    `volatility_scale` stretches the per-second variance so that a demo shows visible moves
    (and indicator crossings) within minutes rather than weeks.
    """

    def __init__(
        self,
        symbols: list[str],
        seed: int = 42,
        volatility_scale: float = 30.0,
        jump_probability: float = 0.0005,
        source: str = "sim",
    ) -> None:
        self.source = source
        self.rng = np.random.default_rng(seed)
        self.volatility_scale = volatility_scale
        self.jump_probability = jump_probability
        self.seed = seed
        self.states: dict[str, _SymbolState] = {}
        self.sync(symbols)

    def sync(self, symbols: list[str]) -> None:
        """Price exactly `symbols`: a new one starts from its seeded state, a removed one stops."""
        for symbol in [s for s in self.states if s not in symbols]:
            del self.states[symbol]
        for symbol in symbols:
            if symbol not in self.states:
                h = zlib.crc32(f"{self.seed}:{symbol}".encode())
                start = 20.0 + (h % 48000) / 100.0
                drift = ((h >> 8) % 200 - 80) / 1000.0  # -8% .. +12% a year
                vol = 0.15 + ((h >> 16) % 45) / 100.0  # 15% .. 60% a year
                self.states[symbol] = _SymbolState(start, drift, vol, 0)

    def step(self, now_ms: int, dt_seconds: float) -> list[Tick]:
        """One tick per symbol at (or just after) `now_ms`; ts stays strictly increasing per symbol."""
        ticks: list[Tick] = []
        n = len(self.states)
        if n == 0:
            return ticks
        shocks = self.rng.standard_normal(n)
        jumps = self.rng.random(n) < self.jump_probability
        jump_sizes = self.rng.normal(0.0, 0.03, n)
        sizes = self._trade_sizes(n)
        dt_years = max(dt_seconds, 1e-6) * self.volatility_scale / SECONDS_PER_YEAR
        for i, (symbol, st) in enumerate(self.states.items()):
            sigma = st.volatility
            log_ret = (st.drift - 0.5 * sigma * sigma) * dt_years + sigma * math.sqrt(dt_years) * shocks[i]
            if jumps[i]:
                log_ret += jump_sizes[i]
            st.price = max(0.01, st.price * math.exp(log_ret))
            ts = max(now_ms, st.last_ts + 1)
            st.last_ts = ts
            ticks.append(
                Tick(
                    symbol=symbol,
                    ts=ts,
                    price=Decimal(f"{st.price:.4f}"),
                    size=int(sizes[i]),
                    source=self.source,
                )
            )
        return ticks

    def _trade_sizes(self, n: int) -> np.ndarray:
        lots = np.maximum(1, np.round(self.rng.lognormal(0.0, 1.0, n))) * 100
        odd = self.rng.random(n) < 0.3
        odd_sizes = self.rng.integers(1, 100, n)
        return np.where(odd, odd_sizes, lots).astype(np.int64)


class SimSource:
    """Paces SimMarket at `ticks_per_second` (across all symbols) in small batches.

    With a watch list, the market follows it: symbols added through the API (the `symbols`
    table, re-read every WATCHLIST_RELOAD_SECONDS) are priced from the next reload on, and
    removed ones stop - the simulator prices what is watched, like a real provider.
    """

    name = "sim"

    def __init__(
        self,
        symbols: list[str],
        ticks_per_second: float = 20.0,
        seed: int = 42,
        volatility_scale: float = 30.0,
        max_ticks: int | None = None,
        batch_interval: float = 0.05,
        watchlist: WatchList | None = None,
    ) -> None:
        if not symbols and watchlist is None:
            raise ValueError("the sim provider needs at least one symbol")
        self.market = SimMarket(symbols, seed=seed, volatility_scale=volatility_scale)
        self.watchlist = watchlist
        self.ticks_per_second = ticks_per_second
        self.max_ticks = max_ticks
        self.batch_interval = batch_interval

    async def batches(self, stop: asyncio.Event) -> AsyncIterator[list[Tick]]:
        if self.watchlist is None:
            async for batch in self._paced(stop):
                yield batch
            return
        await self.watchlist.refresh()
        self.watchlist.changed.clear()
        self.market.sync(self.watchlist.symbols)
        reloader = asyncio.create_task(self.watchlist.run(stop), name="sim-watchlist")
        try:
            async for batch in self._paced(stop):
                yield batch
        finally:
            reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloader

    def _follow_watchlist(self) -> None:
        if self.watchlist is not None and self.watchlist.changed.is_set():
            self.watchlist.changed.clear()
            self.market.sync(self.watchlist.symbols)

    async def _paced(self, stop: asyncio.Event) -> AsyncIterator[list[Tick]]:
        produced = 0
        owed = 0.0
        last = time.monotonic()
        while not stop.is_set():
            self._follow_watchlist()
            # Ticks per second are shared by the symbols watched right now.
            rounds_per_second = self.ticks_per_second / max(1, len(self.market.states))
            now = time.monotonic()
            owed += (now - last) * rounds_per_second
            elapsed, last = now - last, now
            rounds = int(owed)
            owed -= rounds
            batch: list[Tick] = []
            now_ms = int(time.time() * 1000)
            per_round = elapsed / rounds if rounds else elapsed
            for _ in range(rounds):
                batch.extend(self.market.step(now_ms, per_round))
            if self.max_ticks is not None and produced + len(batch) >= self.max_ticks:
                batch = batch[: self.max_ticks - produced]
                if batch:
                    yield batch
                return
            if batch:
                produced += len(batch)
                yield batch
            await sleep_or_stop(stop, self.batch_interval)

    async def aclose(self) -> None:
        return None
