"""Turns provider observations into ticks: drops stale and duplicate quotes, derives trade size.

Rules (per symbol, across all providers of a failover chain):
- a quote whose stamp was already seen is a duplicate (the same quote polled twice);
- a polled quote not newer than the last tick is stale (the provider's time did not move);
- a streamed trade older than the last tick keeps its volume: its time is moved to 1 ms after
  the last tick, so the (symbol, ts, source) key stays unique and order per symbol holds;
- size is the trade size for trades; for cumulative day volume it is the increase since the
  previous quote of the same provider and day (the first quote of a new day counts from the
  open; the first quote after start counts 0, since what came before it is unknown).
Nothing is ever invented: no quote, no tick.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

from fetcher.provider_metrics import QUOTES
from fetcher.quotes import Quote
from stocktrack_common.messages import Tick

SEEN_PER_SYMBOL = 4096


@dataclass
class _VolumeBaseline:
    day: date | None
    volume: int


class TickBuilder:
    def __init__(self) -> None:
        self._last_ts: dict[str, int] = {}
        self._seen: dict[str, OrderedDict[str, None]] = {}
        self._volume: dict[tuple[str, str], _VolumeBaseline] = {}

    def last_ts(self, symbol: str) -> int | None:
        return self._last_ts.get(symbol)

    def to_tick(self, quote: Quote) -> Tick | None:
        seen = self._seen.setdefault(quote.symbol, OrderedDict())
        stamp_key = f"{quote.source}|{quote.stamp}"
        if stamp_key in seen:
            # A polled quote seen again means the provider's time has not moved: stale.
            QUOTES.labels(quote.source, "duplicate" if quote.trade_size is not None else "stale").inc()
            return None
        last = self._last_ts.get(quote.symbol)
        ts = quote.ts_ms
        if last is not None and ts <= last:
            if quote.trade_size is None:
                QUOTES.labels(quote.source, "stale").inc()
                self._remember(seen, stamp_key)
                return None
            ts = last + 1
        size = self._size(quote)
        self._remember(seen, stamp_key)
        self._last_ts[quote.symbol] = ts
        QUOTES.labels(quote.source, "new").inc()
        trade = quote.trade_id if quote.trade_size is not None else None
        return Tick(
            symbol=quote.symbol, ts=ts, price=quote.price, size=size, source=quote.source, trade=trade
        )

    def _size(self, quote: Quote) -> int:
        if quote.trade_size is not None:
            return quote.trade_size
        if quote.day_volume is None:
            return 0
        key = (quote.symbol, quote.source)
        baseline = self._volume.get(key)
        self._volume[key] = _VolumeBaseline(quote.trading_day, quote.day_volume)
        if baseline is None:
            return 0
        if baseline.day == quote.trading_day:
            return max(0, quote.day_volume - baseline.volume)
        if baseline.day is not None and quote.trading_day is not None and quote.trading_day > baseline.day:
            return quote.day_volume
        return 0

    @staticmethod
    def _remember(seen: OrderedDict[str, None], key: str) -> None:
        seen[key] = None
        if len(seen) > SEEN_PER_SYMBOL:
            seen.popitem(last=False)
