"""Features are causal, labels and folds leave no leak, backtests and metrics compute what they claim."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recommender.backtest import (
    EXECUTIONS,
    BacktestSpec,
    execution_returns,
    max_drawdown,
    positions_from_actions,
    run_backtest,
)
from recommender.dataset import build_symbol_rows
from recommender.features import FEATURE_NAMES, WARMUP_BARS, BarValues, FeatureState, build_features
from recommender.labels import LabelSpec, make_labels
from recommender.metrics import classification_metrics
from recommender.model_registry import ModelMismatchError, check_compatibility, running_versions
from recommender.rules_config import load_rules_config
from recommender.walk_forward import walk_forward_folds


def synthetic_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    spread = close * rng.uniform(0.001, 0.02, n)
    return pd.DataFrame(
        {
            "open": close * (1 + rng.normal(0, 0.003, n)),
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, n).astype(float),
        },
        index=pd.date_range("2010-01-01", periods=n, freq="B"),
    )


def test_features_at_t_ignore_everything_after_t() -> None:
    bars = synthetic_bars(400, seed=1)
    baseline = build_features(bars)
    rng = np.random.default_rng(99)
    for t in (WARMUP_BARS + 5, 300, 398):
        future = bars.copy()
        # Shuffle and rescale every row after t: prices, ranges and volumes all change.
        tail = future.iloc[t + 1 :].sample(frac=1.0, random_state=int(rng.integers(1_000)))
        future.iloc[t + 1 :] = tail.to_numpy() * rng.uniform(0.5, 2.0)
        changed = build_features(future)
        pd.testing.assert_frame_equal(changed.iloc[: t + 1], baseline.iloc[: t + 1])
        if t + 1 < len(bars):
            assert not changed.iloc[t + 1 :].equals(baseline.iloc[t + 1 :])


def test_features_warm_up_then_are_all_defined() -> None:
    features = build_features(synthetic_bars(260, seed=2))
    assert list(features.columns) == list(FEATURE_NAMES)
    assert features.iloc[: WARMUP_BARS - 1].isna().all().all()
    assert features.iloc[WARMUP_BARS:].notna().all().all()


def test_feature_state_resumes_from_json_state() -> None:
    bars = synthetic_bars(300, seed=3)
    values = [
        BarValues(*row) for row in bars[["open", "high", "low", "close", "volume"]].itertuples(index=False)
    ]
    whole = FeatureState()
    expected = [whole.update(v) for v in values]
    first = FeatureState()
    head = [first.update(v) for v in values[:210]]
    resumed = FeatureState.from_state(json.loads(json.dumps(first.to_state())))
    assert head + [resumed.update(v) for v in values[210:]] == expected


def test_labels_follow_the_forward_return_thresholds() -> None:
    close = pd.Series([100.0, 101.0, 104.0, 97.0, 100.0, 100.0])
    labels = make_labels(close, LabelSpec(horizon=2, buy_threshold=0.03, sell_threshold=-0.02))
    assert labels.iloc[:4].tolist() == ["buy", "sell", "sell", "buy"]
    assert labels.iloc[4:].isna().all()
    flat = make_labels(
        pd.Series([100.0, 100.5, 99.5, 100.0]), LabelSpec(horizon=1, buy_threshold=0.03, sell_threshold=-0.03)
    )
    assert flat.iloc[:3].tolist() == ["hold", "hold", "hold"]
    with pytest.raises(ValueError):
        LabelSpec(buy_threshold=0.01, sell_threshold=0.02)


def test_walk_forward_folds_expand_and_keep_the_gap() -> None:
    folds = walk_forward_folds(100, n_folds=4, gap=5, min_train_fraction=0.5)
    assert [(f.train_end, f.test_start, f.test_end) for f in folds] == [
        (45, 50, 62),
        (57, 62, 74),
        (69, 74, 86),
        (81, 86, 100),
    ]
    for fold in folds:
        assert fold.test_start - fold.train_end == 5
    with pytest.raises(ValueError):
        walk_forward_folds(10, n_folds=8, gap=5)


def test_positions_and_backtest_arithmetic() -> None:
    actions = ["hold", "buy", "hold", "sell", "hold", "buy"]
    assert positions_from_actions(actions).tolist() == [0, 1, 1, 0, 0, 1]
    assert positions_from_actions(actions, "long_short").tolist() == [0, 1, 1, -1, -1, 1]
    days = pd.date_range("2020-01-01", periods=4, freq="D")
    rows = pd.DataFrame(
        {
            "day": days,
            "symbol": "X",
            "exec_return_open": [0.10, -0.05, 0.02, 0.01],
            "action": ["buy", "hold", "sell", "hold"],
        }
    )
    spec = BacktestSpec(cost_bps=7.0, slippage_bps=3.0)
    result = run_backtest(rows, "action", spec)
    expected = np.cumprod([1 + 0.10 - 0.001, 1 - 0.05, 1 - 0.001, 1.0])
    np.testing.assert_allclose(result.equity.to_numpy(), expected)
    assert result.trades == 2
    assert result.exposure == pytest.approx(0.5)
    assert result.turnover == pytest.approx(2 / 4 * 252)
    assert result.max_drawdown == pytest.approx(expected[2] / expected[0] - 1)
    short = run_backtest(rows, "action", spec.model_copy(update={"side": "long_short"}))
    np.testing.assert_allclose(
        short.equity.to_numpy(), np.cumprod([1 + 0.10 - 0.001, 1 - 0.05, 1 - 0.02 - 0.002, 1 - 0.01])
    )
    assert short.exposure == 1.0 and short.trades == 2
    hold = run_backtest(rows, None, BacktestSpec(cost_bps=0.0, slippage_bps=0.0))
    assert hold.total_return == pytest.approx(np.prod([1.1, 0.95, 1.02, 1.01]) - 1)
    assert hold.trades == 1 and hold.exposure == 1.0
    assert max_drawdown(np.array([1.0, 1.2, 0.9, 1.3])) == pytest.approx(0.9 / 1.2 - 1)


def _bars_with_opens(close: np.ndarray, open_: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "adj_close": close,
            "volume": 1000.0,
        },
        index=pd.date_range("2015-01-01", periods=len(close), freq="B"),
    )


def _oracle_rows(close: np.ndarray, open_: np.ndarray, execution: str) -> pd.DataFrame:
    """Rows with an `oracle` action that knows, at bar t's close, whether its fill at bar t+1
    (open or close) will be above t's close: the knowledge a same-close backtest hands out."""
    bars = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "adj_close": close,
            "volume": 1000.0,
        },
        index=pd.date_range("2015-01-01", periods=len(close), freq="B"),
    )
    rows = build_symbol_rows("X", bars, LabelSpec(horizon=1), load_rules_config())
    fill = bars["open" if execution == "next_open" else "close"].to_numpy()
    rows = rows.iloc[: len(rows) - 2].copy()
    rows["oracle"] = np.where(fill[1 : len(rows) + 1] > rows["close"].to_numpy(), "buy", "sell")
    return rows


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_a_one_bar_look_ahead_cannot_earn_anything(execution: str) -> None:
    """Knowing the price move from the signal bar's close to the next bar's fill earns nothing.

    A backtest that filled at the signal bar's own close would credit exactly that move, and the
    oracle below would look like a money machine; a next-bar backtest pays only for moves after
    the fill, which the oracle knows nothing about.
    """
    spec = BacktestSpec(execution=execution, side="long_short", cost_bps=0.0, slippage_bps=0.0)
    rng = np.random.default_rng(0)
    n = 2500
    gaps, moves = rng.normal(0.0, 0.01, n), rng.normal(0.0, 0.015, n)
    close = 100.0 * np.exp(np.cumsum(gaps + moves))
    open_ = close / np.exp(moves)
    rows = _oracle_rows(close, open_, execution)
    honest = run_backtest(rows, "oracle", spec)
    fill = open_ if execution == "next_open" else close
    same_close = rows.assign(exec_return_close=fill[1 : len(rows) + 1] / rows["close"].to_numpy() - 1.0)
    cheated = run_backtest(same_close, "oracle", spec.model_copy(update={"execution": "next_close"}))
    assert cheated.sharpe > 10.0
    # Zero-mean by construction: within four standard errors of an annualised Sharpe ratio of 0.
    assert abs(honest.sharpe) < 4 * np.sqrt(spec.periods_per_year / len(rows))
    # A zig-zag whose bars open at their close: the oracle buys right before every fall.
    zigzag = 100.0 * np.where(np.arange(400) % 2 == 0, 1.0, 1.02)
    long_flat = spec.model_copy(update={"side": "long_flat"})
    result = run_backtest(_oracle_rows(zigzag, zigzag, execution), "oracle", long_flat)
    assert result.total_return < -0.9 and result.exposure == pytest.approx(0.5, abs=0.01)


def test_execution_returns_start_at_the_next_bar() -> None:
    prices = pd.Series([10.0, 11.0, 12.1, 13.31, 14.0])
    returns = execution_returns(prices)
    # Row t pays price[t+2] / price[t+1] - 1: it ignores price[t] entirely.
    np.testing.assert_allclose(returns.iloc[:3].to_numpy(), [12.1 / 11 - 1, 13.31 / 12.1 - 1, 14 / 13.31 - 1])
    assert returns.iloc[3:].isna().all()
    changed = prices.copy()
    changed.iloc[0] = 1e6
    pd.testing.assert_series_equal(execution_returns(changed), returns)


def test_metrics_shape_and_values() -> None:
    metrics = classification_metrics(["buy", "buy", "sell", "hold"], ["buy", "hold", "sell", "hold"])
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["balanced_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert metrics["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_model_compatibility_check_refuses_mismatches() -> None:
    versions = {"library_versions": running_versions()}
    check_compatibility("m1", versions, list(FEATURE_NAMES), FEATURE_NAMES)
    old = {"library_versions": {**running_versions(), "scikit-learn": "0.24.2"}}
    with pytest.raises(ModelMismatchError, match=r"scikit-learn 0\.24\.2 \(model\)"):
        check_compatibility("m1", old, list(FEATURE_NAMES), FEATURE_NAMES)
    with pytest.raises(ModelMismatchError, match="missing from model: \\['range_norm'\\]"):
        check_compatibility("m1", versions, list(FEATURE_NAMES[:-1]), FEATURE_NAMES)
    with pytest.raises(ModelMismatchError, match="another order: True"):
        check_compatibility("m1", versions, list(reversed(FEATURE_NAMES)), FEATURE_NAMES)
