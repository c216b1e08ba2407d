"""Features are causal, labels and folds leave no leak, backtests and metrics compute what they claim."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recommender.backtest import max_drawdown, positions_from_actions, run_backtest
from recommender.features import FEATURE_NAMES, WARMUP_BARS, BarValues, FeatureState, build_features
from recommender.labels import LabelSpec, make_labels
from recommender.metrics import classification_metrics
from recommender.registry import ModelMismatchError, check_compatibility, running_versions
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
    assert positions_from_actions(["hold", "buy", "hold", "sell", "hold", "buy"]).tolist() == [
        0,
        1,
        1,
        0,
        0,
        1,
    ]
    days = pd.date_range("2020-01-01", periods=4, freq="D")
    rows = pd.DataFrame(
        {
            "day": days,
            "symbol": "X",
            "next_return": [0.10, -0.05, 0.02, 0.01],
            "action": ["buy", "hold", "sell", "hold"],
        }
    )
    result = run_backtest(rows, "action", cost_bps=10.0)
    expected = np.cumprod([1 + 0.10 - 0.001, 1 - 0.05, 1 - 0.001, 1.0])
    np.testing.assert_allclose(result.equity.to_numpy(), expected)
    assert result.trades == 2
    assert result.max_drawdown == pytest.approx(expected[2] / expected[0] - 1)
    hold = run_backtest(rows, None, cost_bps=0.0)
    assert hold.total_return == pytest.approx(np.prod([1.1, 0.95, 1.02, 1.01]) - 1)
    assert max_drawdown(np.array([1.0, 1.2, 0.9, 1.3])) == pytest.approx(0.9 / 1.2 - 1)


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
