"""Closed 1-minute bars derived from the tick stream itself, as the streamer sees every tick.

The arithmetic and the close rule are the one bar model's (stocktrack_common.bars), so a bar
sent here equals the stored bars_1m row of the same ticks, whatever order they arrived in
within their minute. This module only decides when a bar is sent: when the symbol's first tick
of a later minute arrives (bars are driven by data, not by the wall clock, so a replay of the
same ticks yields the same bars). A tick of a minute already sent is dropped here (the stored
bars_1m row has it). The first bar of a symbol after (re)starting is never sent: ticks before
the start may belong to it, and a partial bar would contradict the one stored by the writer.
"""

from __future__ import annotations

from typing import Any

from stocktrack_common.bars import Bar, bucket_of
from stocktrack_common.messages import Tick


def bar_event(symbol: str, bar: Bar) -> dict[str, Any]:
    """The payload of a `bar` event (see the README's streaming contract)."""
    return {
        "symbol": symbol,
        "ts": bar.bucket,
        "open": format(bar.open, "f"),
        "high": format(bar.high, "f"),
        "low": format(bar.low, "f"),
        "close": format(bar.close, "f"),
        "volume": bar.volume,
        "trades": bar.trades,
    }


class MinuteBars:
    def __init__(self) -> None:
        # symbol -> (open bar, whether it saw its minute from the start and may be sent)
        self.current: dict[str, tuple[Bar, bool]] = {}

    def add(self, tick: Tick) -> Bar | None:
        """Fold a tick in; returns the bar it closed, if it closed a complete one."""
        bucket = bucket_of(tick.ts)
        entry = self.current.get(tick.symbol)
        if entry is None:
            self.current[tick.symbol] = (Bar.of_tick(bucket, tick.ts, tick.price, tick.size), False)
            return None
        bar, complete = entry
        if bucket == bar.bucket:
            bar.add(tick.ts, tick.price, tick.size)
            return None
        if bucket < bar.bucket:
            return None  # a late tick of a bar already closed: the stored bars_1m row has it
        self.current[tick.symbol] = (Bar.of_tick(bucket, tick.ts, tick.price, tick.size), True)
        return bar if complete else None
