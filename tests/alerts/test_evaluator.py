"""Rule evaluation without I/O: which events fire, under which key, and that state survives a restart."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import pytest

from alerts.condition_state import SymbolState
from alerts.evaluator import evaluate_signal, evaluate_tick
from alerts.rule_book import AlertRule, RuleBook
from stocktrack_common.alert_conditions import CONDITION_ADAPTER, Direction, SignalCondition, crossing
from stocktrack_common.bars import MINUTE_MS
from stocktrack_common.indicators import rsi as batch_rsi
from stocktrack_common.messages import Signal, Tick

Action = Literal["buy", "sell", "hold"]
T0 = 1_700_000_040_000  # a minute boundary


def rule(rule_id: str, condition: dict[str, Any], symbol: str = "AAPL") -> AlertRule:
    return AlertRule(rule_id, symbol, None, CONDITION_ADAPTER.validate_python(condition))


def tick(ts: int, price: str, symbol: str = "AAPL") -> Tick:
    return Tick(symbol=symbol, ts=ts, price=Decimal(price), size=100, source="sim")


def signal(action: Action, source: str = "rules", confidence: float = 0.8, ts: int = T0) -> Signal:
    return Signal(
        symbol="AAPL",
        ts=ts,
        price=Decimal("101.5"),
        action=action,
        confidence=confidence,
        source=source,
        reasons={"rsi": 28.1},
    )


@pytest.mark.parametrize(
    ("previous", "current", "direction", "expected"),
    [
        (99, 101, "above", "above"),
        (99, 100, "either", "above"),
        (101, 99, "above", None),
        (101, 99, "below", "below"),
        (100.5, 100, "either", "below"),
        (101, 102, "either", None),
        (None, 101, "either", None),
        (100, 100, "either", None),
    ],
)
def test_crossing_needs_the_previous_value_on_the_other_side(
    previous: float | None, current: float, direction: Direction, expected: str | None
) -> None:
    assert crossing(previous, current, 100, direction) == expected


def test_signal_rules_filter_by_action_source_and_confidence() -> None:
    book = RuleBook.of(
        [
            rule("any-buy", {"type": "signal", "actions": ["buy"]}),
            rule("model-sell", {"type": "signal", "actions": ["sell"], "source": "model"}),
            rule(
                "sure-rules",
                {"type": "signal", "actions": ["buy", "sell"], "source": "rules", "min_confidence": 0.9},
            ),
        ]
    )
    fired = evaluate_signal(book, signal("buy"))
    assert [a.rule.id for a in fired] == ["any-buy"]
    assert fired[0].event_key == f"signal:{T0}:rules"
    assert fired[0].event["action"] == "buy" and fired[0].event["reasons"] == {"rsi": 28.1}
    assert [a.rule.id for a in evaluate_signal(book, signal("sell", source="model:m1"))] == ["model-sell"]
    assert [a.rule.id for a in evaluate_signal(book, signal("sell", confidence=0.95))] == ["sure-rules"]
    assert evaluate_signal(book, signal("hold")) == []


def test_unknown_condition_fields_are_rejected() -> None:
    with pytest.raises(ValueError):
        CONDITION_ADAPTER.validate_python({"type": "signal", "actions": ["buy"], "colour": "red"})
    assert isinstance(CONDITION_ADAPTER.validate_python({"type": "signal"}), SignalCondition)


def test_price_crossings_fire_once_per_crossing_tick_and_skip_redeliveries() -> None:
    book = RuleBook.of([rule("r1", {"type": "price_cross", "level": "100", "direction": "either"})])
    state = SymbolState()
    prices = ["99.5", "99.9", "100.2", "100.4", "99.8", "99.7"]
    fired = [a for i, p in enumerate(prices) for a in evaluate_tick(book, state, tick(T0 + i, p))]
    assert [(a.event["crossed"], a.event_key) for a in fired] == [
        ("above", f"price:{T0 + 2}:sim"),
        ("below", f"price:{T0 + 4}:sim"),
    ]
    assert evaluate_tick(book, state, tick(T0 + 2, "100.2")) == []  # a redelivered tick changes nothing
    assert state.last_ts == T0 + 5


def test_rsi_crossing_uses_minute_closes_and_matches_the_batch_indicator() -> None:
    closes = [100 + i for i in range(20)] + [119 - 3 * i for i in range(12)]
    expected = batch_rsi(closes, 5)
    below_30 = [i for i in range(1, len(closes)) if expected[i - 1] > 30 >= expected[i]]
    assert below_30, "the series must cross 30"
    book = RuleBook.of([rule("r", {"type": "rsi_cross", "threshold": 30, "direction": "below", "period": 5})])
    state = SymbolState()
    fired = []
    for minute, close in enumerate([*closes, closes[-1]]):
        # two ticks a minute: the minute's close is the second one
        fired += evaluate_tick(book, state, tick(T0 + minute * MINUTE_MS, "150"))
        fired += evaluate_tick(book, state, tick(T0 + minute * MINUTE_MS + 30_000, str(close)))
    assert [a.event["bar_time"] for a in fired] == [T0 + i * MINUTE_MS for i in below_30]
    assert fired[0].event["rsi"] == pytest.approx(expected[below_30[0]], abs=1e-4)


def test_state_round_trips_through_json_so_a_restart_resumes() -> None:
    book = RuleBook.of(
        [
            rule("p", {"type": "price_cross", "level": "100"}),
            rule("r", {"type": "rsi_cross", "threshold": 50, "period": 3}),
        ]
    )
    straight, restarted = SymbolState(), SymbolState()
    prices = [98, 99, 101, 97, 102, 96, 103, 95, 104]
    out_straight, out_restarted = [], []
    for i, p in enumerate(prices):
        t = tick(T0 + i * MINUTE_MS, str(p))
        out_straight += evaluate_tick(book, straight, t)
        out_restarted += evaluate_tick(book, restarted, t)
        restarted = SymbolState.from_json(restarted.to_json())
    assert [a.event_key for a in out_restarted] == [a.event_key for a in out_straight]
    assert any(a.event["type"] == "rsi_cross" for a in out_straight)
