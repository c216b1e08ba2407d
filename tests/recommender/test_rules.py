"""Rule engine on hand-made series: each rule fires where it should, the vote resolves conflicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.rule_engine import IndicatorSnapshot, RuleEngine, RuleIndicators, confidence_bucket
from recommender.rules_config import RulesConfig, RulesConfigError, load_rules_config, parse_rules_config


def only(rule: str, **overrides: object) -> RulesConfig:
    """A config with one rule enabled (weight 1), so a test sees that rule's vote alone."""
    sections = {
        "rsi": {"enabled": rule == "rsi"},
        "macd": {"enabled": rule == "macd"},
        "sma_trend": {"enabled": rule == "sma_trend", "weight": 1.0},
    }
    for key, value in overrides.items():
        section, field = key.split("__")
        sections[section][field] = value
    return RulesConfig.model_validate(sections)


def run(config: RulesConfig, closes: list[float] | np.ndarray) -> list[tuple[str, tuple[str, ...]]]:
    indicators = RuleIndicators(config)
    engine = RuleEngine(config)
    out = []
    for close in closes:
        decision = engine.decide(indicators.update(float(close)))
        out.append((decision.action if decision.ready else "warmup", tuple(f.rule for f in decision.fired)))
    return out


def test_rsi_below_30_buys_and_above_70_sells() -> None:
    falling = [100.0 - i for i in range(20)]
    rising = [100.0 + i for i in range(20)]
    config = only("rsi")
    assert run(config, falling)[-1] == ("buy", ("rsi_oversold",))
    assert run(config, rising)[-1] == ("sell", ("rsi_overbought",))
    zigzag = [100.0 + (i % 2) for i in range(30)]
    assert run(config, zigzag)[-1] == ("hold", ())


def test_rsi_thresholds_come_from_config() -> None:
    # Alternating -1.0 / +0.75 moves: RSI settles near 43, between the default thresholds.
    mild_fall = list(np.cumsum([100.0] + [-1.0 if i % 2 == 0 else 0.75 for i in range(15)]))
    assert run(only("rsi", rsi__period=4), mild_fall)[-1][0] == "hold"
    assert (
        run(only("rsi", rsi__period=4, rsi__oversold=45.0, rsi__overbought=80.0), mild_fall)[-1][0] == "buy"
    )


def test_macd_crossing_above_and_below_its_signal() -> None:
    config = only("macd", macd__fast=3, macd__slow=6, macd__signal=3)
    down_then_up = [100.0 - i for i in range(15)] + [86.0 + 2 * i for i in range(6)]
    results = run(config, down_then_up)
    crosses = [i for i, (_, fired) in enumerate(results) if "macd_cross_up" in fired]
    assert len(crosses) == 1 and crosses[0] >= 15
    assert results[crosses[0]][0] == "buy"
    up_then_down = [100.0 + i for i in range(15)] + [114.0 - 2 * i for i in range(6)]
    results = run(config, up_then_down)
    crosses = [i for i, (_, fired) in enumerate(results) if "macd_cross_down" in fired]
    assert len(crosses) == 1 and results[crosses[0]][0] == "sell"
    # Between crossings the rule is quiet: a crossing is an event, not a state.
    assert all(action == "hold" for action, _ in results[crosses[0] + 1 :])


def test_sma_trend_state_and_golden_death_cross() -> None:
    series = [100.0 - 0.5 * i for i in range(12)] + [94.0 + 1.5 * i for i in range(12)]
    state = run(only("sma_trend", sma_trend__fast=3, sma_trend__slow=8), series)
    assert state[10] == ("sell", ("sma_death",))
    assert state[-1] == ("buy", ("sma_golden",))
    cross = run(only("sma_trend", sma_trend__fast=3, sma_trend__slow=8, sma_trend__mode="cross"), series)
    golden = [i for i, (_, fired) in enumerate(cross) if fired == ("sma_golden_cross",)]
    assert len(golden) == 1 and cross[golden[0]][0] == "buy"
    assert cross[-1] == ("hold", ())
    falling_again = series + [series[-1] - 3.0 * i for i in range(1, 12)]
    death = [
        i
        for i, (_, f) in enumerate(
            run(
                only("sma_trend", sma_trend__fast=3, sma_trend__slow=8, sma_trend__mode="cross"),
                falling_again,
            )
        )
        if f == ("sma_death_cross",)
    ]
    assert len(death) == 1 and death[0] > golden[0]


def test_weighted_vote_resolves_conflicts() -> None:
    # rsi 1.0, macd 1.0, sma_trend 0.5; every non-zero majority decides
    engine = RuleEngine(RulesConfig.model_validate({"vote": {"min_strength": 0.0}}))
    conflicting = IndicatorSnapshot(
        price=100.0, rsi=25.0, macd_hist=-0.1, prev_macd_hist=0.2, sma_fast=101.0, sma_slow=100.0
    )
    decision = engine.decide(conflicting)
    # buy: rsi 1.0 + trend 0.5 = 1.5; sell: macd 1.0; available 2.5 -> buy with strength 0.2.
    assert decision.action == "buy"
    assert decision.confidence == pytest.approx(0.2)
    assert {f.rule for f in decision.fired} == {"rsi_oversold", "macd_cross_down", "sma_golden"}
    tie = IndicatorSnapshot(price=100.0, rsi=25.0, macd_hist=-0.1, prev_macd_hist=0.2)
    decision = engine.decide(tie)
    assert decision.action == "hold" and decision.confidence == pytest.approx(0.0)
    reasons = decision.reasons()
    assert reasons["vote"] == {"buy": 1.0, "sell": 1.0, "available": 2.0}
    assert reasons["indicators"]["rsi"] == 25.0 and {r["rule"] for r in reasons["rules"]} == {
        "rsi_oversold",
        "macd_cross_down",
    }


def test_min_strength_turns_weak_majorities_into_hold() -> None:
    config = RulesConfig.model_validate({"vote": {"min_strength": 0.3}})
    snapshot = IndicatorSnapshot(
        price=100.0, rsi=25.0, macd_hist=-0.1, prev_macd_hist=0.2, sma_fast=101.0, sma_slow=100.0
    )
    assert RuleEngine(config).decide(snapshot).action == "hold"


def test_shipped_rules_hold_unless_a_rule_is_decisive() -> None:
    engine = RuleEngine(load_rules_config())
    calm = {"price": 100.0, "rsi": 50.0, "macd_hist": 0.1, "prev_macd_hist": 0.2}
    trend_only = engine.decide(IndicatorSnapshot(**calm, sma_fast=101.0, sma_slow=100.0))
    assert trend_only.ready and trend_only.action == "hold"
    against_trend = engine.decide(IndicatorSnapshot(**{**calm, "rsi": 25.0}, sma_fast=99.0, sma_slow=100.0))
    assert against_trend.action == "hold"
    oversold = engine.decide(IndicatorSnapshot(**{**calm, "rsi": 25.0}, sma_fast=101.0, sma_slow=100.0))
    assert oversold.action == "buy" and oversold.confidence == pytest.approx(0.6)
    assert engine.config.vote.min_strength == RulesConfig().vote.min_strength == 0.3


def test_warm_up_decision_is_not_ready() -> None:
    decision = RuleEngine(RulesConfig()).decide(IndicatorSnapshot(price=10.0))
    assert not decision.ready and decision.action == "hold"


def test_confidence_buckets() -> None:
    assert [confidence_bucket(c, 4) for c in (0.0, 0.24, 0.25, 0.99, 1.0)] == [0, 0, 1, 3, 3]


def test_default_config_file_is_shipped_and_valid() -> None:
    config = load_rules_config()
    assert config.rsi.oversold == 30.0 and config.rsi.overbought == 70.0
    assert (config.macd.fast, config.macd.slow, config.macd.signal) == (12, 26, 9)
    assert (config.sma_trend.fast, config.sma_trend.slow) == (50, 200)


def test_config_from_file_and_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[rsi]\noversold = 20\noverbought = 80\n")
    assert load_rules_config(path).rsi.oversold == 20.0
    with pytest.raises(RulesConfigError, match="oversold must be below"):
        parse_rules_config("[rsi]\noversold = 80\noverbought = 20\n")
    with pytest.raises(RulesConfigError, match=r"macd\.fast"):
        parse_rules_config("[macd]\nfast = 30\nslow = 26\n")
    with pytest.raises(RulesConfigError, match="not valid TOML"):
        parse_rules_config("[rsi\n")
    with pytest.raises(RulesConfigError, match="Extra inputs"):
        parse_rules_config("[rsi]\nperiode = 3\n")
    with pytest.raises(RulesConfigError, match="at least one rule"):
        parse_rules_config("[rsi]\nenabled = false\n[macd]\nenabled = false\n[sma_trend]\nenabled = false\n")


def test_rule_indicator_state_round_trips_and_refuses_other_periods() -> None:
    config = RulesConfig()
    closes = 100 + np.cumsum(np.random.default_rng(0).normal(size=260))
    whole = RuleIndicators(config)
    part = RuleIndicators(config)
    for c in closes[:200]:
        whole.update(float(c))
        part.update(float(c))
    restored = RuleIndicators.from_state(config, part.to_state())
    assert [whole.update(float(c)) for c in closes[200:]] == [restored.update(float(c)) for c in closes[200:]]
    other = RulesConfig.model_validate({"rsi": {"period": 10}})
    with pytest.raises(ValueError):
        RuleIndicators.from_state(other, part.to_state())
