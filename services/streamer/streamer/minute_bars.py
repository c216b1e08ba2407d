"""Closed 1-minute bars derived from the tick stream itself, as the streamer sees every tick.

The arithmetic and the order rule are the one bar model's (stocktrack_common.bars), so a bar
sent here equals the stored bars_1m row of the same ticks, whatever order they arrived in
within their minute. When a bar is sent is the shared close rule (stocktrack_common.bar_closing):
at its end plus BAR_CLOSE_GRACE_MS, by a tick of the symbol stamped that late, or by the hub's
close timer for a live bar, so a quiet symbol's last minute does not wait for its next tick. A
tick inside the grace amends the bar before it is sent; a tick of a minute already sent is not
folded in (the stored bars_1m row has it) and the hub counts it as late. The first bar of a
symbol after (re)starting is never sent: ticks before the start may belong to it, and a partial
bar would contradict the one stored by the writer.
"""

from __future__ import annotations

from typing import Any

from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.bars import MINUTE_MS, Bar
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
    def __init__(self, grace_ms: int = 0) -> None:
        self.grace_ms = grace_ms
        # symbol -> (its open bars, the bucket of its first bar: partial, never sent)
        self.symbols: dict[str, tuple[BarBuilder, int]] = {}

    def add(self, tick: Tick) -> tuple[list[Bar], bool]:
        """Fold a tick in; returns (the complete bars its time closed, oldest first; whether it was used)."""
        entry = self.symbols.get(tick.symbol)
        if entry is None:
            builder = BarBuilder(MINUTE_MS, grace_ms=self.grace_ms)
            entry = self.symbols[tick.symbol] = (builder, builder.bucket_of(tick.ts))
        builder, partial = entry
        closed, used = builder.add(tick.ts, tick.price, tick.size)
        return [bar for bar in closed if bar.bucket != partial], used

    def close_due(self, now_ms: int) -> list[tuple[str, Bar]]:
        """The timer's closes: live bars (ended within the last two minutes) past their end plus grace.

        An older bar is a backlog or a replay whose later ticks may still be on their way: only
        its own symbol's ticks close it, as in bar_closing.
        """
        live_from = now_ms - 2 * MINUTE_MS
        closed: list[tuple[str, Bar]] = []
        for symbol, (builder, partial) in self.symbols.items():
            closed.extend(
                (symbol, bar) for bar in builder.close_due(now_ms, live_from) if bar.bucket != partial
            )
        return closed
