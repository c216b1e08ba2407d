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

from alerts.rules import AlertRule, RuleBook
from alerts.symbol_state import SymbolState
from stocktrack_common.alert_conditions import (
    PriceCrossCondition,
    RsiCrossCondition,
    SignalCondition,
    crossing,
)
from stocktrack_common.indicators import RSI
from stocktrack_common.messages import Signal, Tick

MINUTE_MS = 60_000


@dataclass(frozen=True)
class PendingAlert:
    rule: AlertRule
    event_key: str
    event_ts: int
    event: dict[str, Any]
    text: str


def minute_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % MINUTE_MS


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


def evaluate_tick(book: RuleBook, state: SymbolState, tick: Tick) -> list[PendingAlert]:
    """Advance `state` by one tick and return the crossings it completes.

    A tick at or before the newest one already evaluated is a redelivery and changes nothing.
    """
    if tick.ts <= state.last_ts:
        return []
    previous = state.last_price
    state.last_ts, state.last_price = tick.ts, tick.price
    alerts = _price_crossings(book.price_rules.get(tick.symbol, ()), previous, tick)
    bucket = minute_of(tick.ts)
    if state.bucket is None or state.bucket_close is None:
        state.bucket, state.bucket_close = bucket, float(tick.price)
    elif bucket > state.bucket:
        alerts += _rsi_crossings(book.rsi_rules.get(tick.symbol, ()), state, tick)
        state.bucket, state.bucket_close = bucket, float(tick.price)
    elif bucket == state.bucket:
        state.bucket_close = float(tick.price)
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


def _rsi_crossings(rules: Any, state: SymbolState, tick: Tick) -> list[PendingAlert]:
    """Feed the closed minute into every RSI the symbol's rules use and test each threshold."""
    assert state.bucket is not None and state.bucket_close is not None
    closed_bucket, close = state.bucket, state.bucket_close
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
