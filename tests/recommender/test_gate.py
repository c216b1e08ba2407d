"""The activation gate refuses noise: random walks never yield an active model, real skill passes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from pydantic import SecretStr
from sklearn.metrics import balanced_accuracy_score

from recommender.backtest import BacktestResult, sharpe_ratio, sortino_ratio
from recommender.gate import (
    GateConfig,
    _risk_of,
    balanced_accuracy_of,
    daily_confusions,
    evaluate_gate,
    risk_bootstrap_differences,
)
from recommender.labels import CLASSES
from recommender.model_factory import ALGORITHMS
from recommender.train_cli import train
from stocktrack_common.daily_bars_csv import load_daily_bars_csv
from stocktrack_common.settings import CommonSettings

SEEDS = (11, 22, 33)


def write_random_walk_csv(path: Path, symbols: list[str], days: int, seed: int) -> None:
    """Geometric Brownian motion (a little drift, 1.5 % daily volatility): nothing to predict."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-01-02", periods=days)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Ticker", "Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"])
        for symbol in symbols:
            log_close = np.log(40.0) + np.cumsum(rng.normal(0.0003, 0.015, days))
            close = np.exp(log_close)
            open_ = close * np.exp(rng.normal(0.0, 0.004, days))
            high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.006, days)))
            low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.006, days)))
            volume = rng.integers(100_000, 5_000_000, days)
            for row in zip(dates, open_, high, low, close, close, volume, strict=True):
                day, o, h, lo, c, adj, v = row
                writer.writerow(
                    [
                        symbol,
                        day.date().isoformat(),
                        f"{o:.4f}",
                        f"{h:.4f}",
                        f"{lo:.4f}",
                        f"{c:.4f}",
                        f"{adj:.4f}",
                        int(v),
                    ]
                )


@pytest.mark.timeout(900)  # nine trainings; minutes on a loaded two-core machine
def test_no_model_trained_on_random_walks_is_activated(
    db_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    settings = CommonSettings(
        database_url=SecretStr(db_url), redis_url=SecretStr(redis_url), stream_prefix=prefix
    )
    verdicts: list[tuple[int, str, bool, list[bool]]] = []
    for seed in SEEDS:
        symbols = [f"RW{seed}A", f"RW{seed}B"]
        path = tmp_path / f"walk-{seed}.csv"
        write_random_walk_csv(path, symbols, days=600, seed=seed)
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert load_daily_bars_csv(conn, path, source="random-walk") == 2 * 600
        for algorithm in ALGORITHMS:
            report = train(
                [
                    "--symbols",
                    ",".join(symbols),
                    "--algorithm",
                    algorithm,
                    "--folds",
                    "3",
                    "--bootstrap-samples",
                    "400",
                    "--no-progress",
                    "--output-dir",
                    str(tmp_path / "out"),
                ],
                settings,
            )
            gate = report["gate"]
            assert len(gate["criteria"]) == 4
            for criterion in gate["criteria"]:
                edge = min(criterion["lower_bound"], *criterion["fold_differences"])
                assert criterion["passed"] is (edge > criterion["threshold"])
            verdicts.append(
                (seed, algorithm, report["activation"]["activated"], [c["passed"] for c in gate["criteria"]])
            )
            assert report["activation"]["forced"] is False
    with psycopg.connect(db_url) as conn:
        stored, active = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE active) FROM models"
        ).fetchone()
    assert stored == len(SEEDS) * len(ALGORITHMS)
    assert active == 0, verdicts
    assert not any(activated for _, _, activated, _ in verdicts)


def _result(returns: list[float]) -> BacktestResult:
    series = pd.Series(returns, index=pd.bdate_range("2020-01-01", periods=len(returns)))
    values = np.asarray(returns)
    return BacktestResult(
        (1 + series).cumprod(),
        series,
        0.0,
        sharpe_ratio(values, 252),
        sortino_ratio(values, 252),
        0.0,
        0,
        0.0,
        1.0,
    )


def _predictions(skill: float, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=days, p=[0.3, 0.4, 0.3])
    guess = rng.choice(CLASSES, size=days)
    model = np.where(rng.random(days) < skill, labels, guess)
    return pd.DataFrame(
        {
            "day": pd.bdate_range("2020-01-01", periods=days),
            "label": labels,
            "model": model,
            "always_hold": "hold",
            "majority": "hold",
            "rules": rng.choice(CLASSES, size=days),
            "fold": np.arange(days) * 3 // days,
        }
    )


def test_bootstrap_statistics_match_the_direct_computation() -> None:
    rng = np.random.default_rng(4)
    returns = pd.Series(rng.normal(0.0005, 0.01, 300))
    for measure, direct in (("sharpe", sharpe_ratio), ("sortino", sortino_ratio)):
        values = returns.to_numpy()
        sums = np.array([[values.sum(), (values**2).sum(), (np.minimum(values, 0) ** 2).sum()]])
        assert _risk_of(sums, len(values), measure, 252)[0] == pytest.approx(direct(values, 252))
        same = risk_bootstrap_differences(returns, returns, measure, 252, 10, 200, 0)
        assert np.all(same == 0.0)
    better = risk_bootstrap_differences(returns + 0.002, returns, "sharpe", 252, 10, 300, 0)
    assert np.quantile(better, 0.05) > 0


def test_bootstrap_balanced_accuracy_matches_sklearn() -> None:
    rows = _predictions(0.3, 300, seed=1)
    codes, days = pd.factorize(rows["day"], sort=True)
    for column in ("model", "always_hold", "rules"):
        counts = daily_confusions(rows, codes, len(days), column)
        assert float(balanced_accuracy_of(counts.sum(axis=0))) == pytest.approx(
            balanced_accuracy_score(rows["label"], rows[column])
        )


def test_gate_passes_real_skill_and_refuses_a_coin_flip() -> None:
    config = GateConfig(bootstrap_samples=500)
    good = {"model": _result([0.01, -0.002] * 300), "buy_and_hold": _result([0.01, -0.009] * 300)}
    skilled = evaluate_gate(_predictions(0.5, 600, seed=2), good, config, horizon=5, backtest_label="test")
    assert skilled["passed"] and skilled["verdict"] == "passed every criterion"
    assert all(c["passed"] for c in skilled["criteria"])
    assert skilled["criteria"][0]["lower_bound"] > 0 and skilled["criteria"][0]["p_value"] < 0.05
    coin = evaluate_gate(_predictions(0.0, 600, seed=3), good, config, horizon=5, backtest_label="test")
    assert not coin["passed"] and coin["verdict"].startswith("refused: balanced accuracy beats always hold")
    worse = {"model": _result([0.01, -0.009] * 300), "buy_and_hold": _result([0.01, -0.002] * 300)}
    no_edge = evaluate_gate(_predictions(0.5, 600, seed=2), worse, config, horizon=5, backtest_label="x")
    assert [c["passed"] for c in no_edge["criteria"]] == [True, True, True, False]
    assert no_edge["criteria"][-1]["criterion"] == "sharpe beats buy and hold (x)"
    assert no_edge["method"]["block_days"] == 10 and no_edge["method"]["confidence"] == 0.95
