"""Turns signals and ticks into the alerts they trigger. Pure: no I/O, so it is tested directly.

Every alert carries an event key that names the event, not the delivery attempt: the signal's
natural key, the crossing tick's natural key, or the RSI's closed minute. The same event seen
again after a redelivery therefore yields the same (rule, event) pair, which the deliveries
table accepts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from alerts.condition_state import SymbolState
from alerts.rule_book import AlertRule, RuleBook
from stocktrack_common.alert_conditions import (
    PriceCrossCondition,
    RsiCrossCondition,
    SignalCondition,
    crossing,
)
from stocktrack_common.bars import Bar, bucket_of
from stocktrack_common.indicators import RSI
from stocktrack_common.messages import Signal, Tick


@dataclass(frozen=True)
class PendingAlert:
    rule: AlertRule
    event_key: str
    event_ts: int
    event: dict[str, Any]
    text: str


def evaluate_signal(book: RuleBook, signal: Signal) -> list[PendingAlert]:
    alerts = []
    for rule in book.signal_rules.get(signal.symbol, ()):
        if isinstance(rule.condition, SignalCondition) and rule.condition.matches(signal):
            alerts.append(
                PendingAlert(
                    rule=rule,
                    event_key=f"signal:{signal.ts}:{signal.source}",
                    event_ts=signal.ts,
                    event={
                        "type": "signal",
                        "ts": signal.ts,
                        "price": format(signal.price, "f"),
                        "action": signal.action,
                        "source": signal.source,
                        "confidence": signal.confidence,
                        "reasons": signal.reasons,
                    },
                    text=f"{signal.symbol}: {signal.action.upper()} signal from {signal.source} at "
                    f"{format(signal.price, 'f')} (confidence {signal.confidence:.2f})",
                )
            )
    return alerts


def close_minute(state: SymbolState, tick: Tick) -> Bar | None:
    """Fold the tick into the symbol's open minute bar; returns the bar it closed, if any.

    The bar is the one bar model's (stocktrack_common.bars), so the close RSI rules read is the
    close of the stored bars_1m row, whatever order the minute's ticks arrived in. A minute
    closes when a tick of a later minute arrives; a tick of an earlier minute is late and left
    out. Only the close is read here, and a redelivered tick cannot change it (the greatest
    (ts, price) stays the greatest); volume and trades may count such a tick twice.
    """
    bucket = bucket_of(tick.ts)
    bar = state.bar
    if bar is None or bucket > bar.bucket:
        state.bar = Bar.of_tick(bucket, tick.ts, tick.price, tick.size)
        return bar
    if bucket == bar.bucket:
        bar.add(tick.ts, tick.price, tick.size)
    return None


def evaluate_tick(book: RuleBook, state: SymbolState, tick: Tick) -> list[PendingAlert]:
    """Advance `state` by one tick and return the crossings it completes.

    Price crossings compare a tick with the newest one before it: a tick at or before the newest
    one already evaluated (a redelivery, or late) crosses nothing. Every tick goes into the
    minute bar, whose closes feed RSI rules.
    """
    alerts: list[PendingAlert] = []
    if tick.ts > state.last_ts:
        previous = state.last_price
        state.last_ts, state.last_price = tick.ts, tick.price
        alerts += _price_crossings(book.price_rules.get(tick.symbol, ()), previous, tick)
    closed = close_minute(state, tick)
    if closed is not None:
        alerts += _rsi_crossings(book.rsi_rules.get(tick.symbol, ()), state, closed, tick)
    return alerts


def _price_crossings(rules: Any, previous: Decimal | None, tick: Tick) -> list[PendingAlert]:
    alerts = []
    for rule in rules:
        condition = rule.condition
        if not isinstance(condition, PriceCrossCondition):
            continue
        side = crossing(previous, tick.price, condition.level, condition.direction)
        if side is None:
            continue
        level = format(condition.level, "f")
        alerts.append(
            PendingAlert(
                rule=rule,
                event_key=f"price:{tick.ts}:{tick.source}",
                event_ts=tick.ts,
                event={
                    "type": "price_cross",
                    "ts": tick.ts,
                    "price": format(tick.price, "f"),
                    "previous_price": None if previous is None else format(previous, "f"),
                    "level": level,
                    "crossed": side,
                    "source": tick.source,
                },
                text=f"{tick.symbol} crossed {side} {level}: {format(tick.price, 'f')}",
            )
        )
    return alerts


def _rsi_crossings(rules: Any, state: SymbolState, closed: Bar, tick: Tick) -> list[PendingAlert]:
    """Feed the closed minute into every RSI the symbol's rules use and test each threshold."""
    closed_bucket, close = closed.bucket, float(closed.close)
    moves: dict[int, tuple[float | None, float | None]] = {}
    for period in {r.condition.period for r in rules if isinstance(r.condition, RsiCrossCondition)}:
        rsi = state.rsi.setdefault(period, RSI(period))
        before = rsi.value
        moves[period] = (before, rsi.update(close))
    alerts = []
    for rule in rules:
        condition = rule.condition
        if not isinstance(condition, RsiCrossCondition):
            continue
        before, after = moves[condition.period]
        if after is None:
            continue
        side = crossing(before, after, condition.threshold, condition.direction)
        if side is None:
            continue
        alerts.append(
            PendingAlert(
                rule=rule,
                event_key=f"rsi{condition.period}:{closed_bucket}",
                event_ts=tick.ts,
                event={
                    "type": "rsi_cross",
                    "ts": tick.ts,
                    "bar_time": closed_bucket,
                    "close": close,
                    "rsi": round(after, 4),
                    "previous_rsi": None if before is None else round(before, 4),
                    "period": condition.period,
                    "threshold": condition.threshold,
                    "crossed": side,
                },
                text=f"{tick.symbol} RSI({condition.period}) crossed {side} {condition.threshold:g}: {after:.1f}",
            )
        )
    return alerts
