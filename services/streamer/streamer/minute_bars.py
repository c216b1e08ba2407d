"""Closed 1-minute bars derived from the tick stream itself, as the streamer sees every tick.

A bar closes when the symbol's first tick of a later minute arrives (bars are driven by data,
not by the wall clock, so a replay of the same ticks yields the same bars). The first bar of a
symbol after (re)starting is never emitted: ticks before the start may belong to it, and a
partial bar would contradict the one stored by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stocktrack_common.messages import Tick

MINUTE_MS = 60_000


@dataclass(slots=True)
class _Bar:
    bucket: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int
    complete: bool

    def to_json(self, symbol: str) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "ts": self.bucket,
            "open": format(self.open, "f"),
            "high": format(self.high, "f"),
            "low": format(self.low, "f"),
            "close": format(self.close, "f"),
            "volume": self.volume,
            "trades": self.trades,
        }


class MinuteBars:
    def __init__(self) -> None:
        self.current: dict[str, _Bar] = {}

    def add(self, tick: Tick) -> dict[str, Any] | None:
        """Fold a tick in; returns the bar it closed, if it closed a complete one."""
        bucket = tick.ts - tick.ts % MINUTE_MS
        bar = self.current.get(tick.symbol)
        if bar is not None and bucket == bar.bucket:
            bar.high = max(bar.high, tick.price)
            bar.low = min(bar.low, tick.price)
            bar.close = tick.price
            bar.volume += tick.size
            bar.trades += 1
            return None
        if bar is not None and bucket < bar.bucket:
            return None  # a late tick of a bar already closed: the stored bar_1m row has it
        closed = bar.to_json(tick.symbol) if bar is not None and bar.complete else None
        self.current[tick.symbol] = _Bar(
            bucket, tick.price, tick.price, tick.price, tick.price, tick.size, 1, complete=bar is not None
        )
        return closed
