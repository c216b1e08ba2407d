"""The activation gate: a model goes live only when it beats every baseline by more than noise.

A model trained on a random walk still beats a baseline by a hair about half the time, so
"higher balanced accuracy than the rule engine" activates noise. The gate asks instead, on the
pooled out-of-sample rows:

1. for each baseline (always hold, the fold's majority class, the rule engine): is the model's
   balanced accuracy higher by more than `min_margin` with `confidence`? The test is a paired
   moving-block bootstrap over out-of-sample days: whole blocks of consecutive days are drawn
   with replacement (labels of neighbouring days overlap by the label horizon, so single days
   are not independent), model and baseline are scored on the same draw, and the criterion
   passes when the lower `1 - confidence` quantile of the difference exceeds `min_margin`;
2. does the model's next-bar, after-cost backtest beat buy-and-hold on the same days on the
   configured risk-adjusted measure (Sharpe or Sortino) by more than `risk_margin`, with the
   same confidence? The same kind of bootstrap resamples the two daily return series together.

Each criterion must also hold in every walk-forward fold on its own (a fold-wise sign test).
A fitted model leans the same way for weeks, so out-of-sample days are more alike than short
blocks capture and the bootstrap alone is too generous: measured on random walks it let about
one model in ten through each test. Requiring the edge in every fold as well cuts that to what
the report's "noise" figures in docs/recommender.md show.

Every criterion is reported with its values and verdict, so a refusal says exactly why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recommender.backtest import BacktestResult, RiskMeasure, sharpe_ratio, sortino_ratio
from recommender.labels import CLASSES

BASELINES: tuple[tuple[str, str], ...] = (
    ("always_hold", "always hold"),
    ("majority", "majority class"),
    ("rules", "rule engine"),
)
_CHUNK = 250  # bootstrap resamples scored at once: bounds memory on long histories


class GateConfig(BaseModel):
    """The gate's thresholds; recorded in every report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="one-sided bootstrap confidence")
    min_margin: float = Field(default=0.0, ge=0.0, lt=1.0, description="balanced-accuracy points to clear")
    bootstrap_samples: int = Field(default=2000, ge=100, le=100_000)
    block_days: int | None = Field(default=None, ge=1, description="default: twice the label horizon")
    risk_measure: RiskMeasure = "sharpe"
    risk_margin: float = Field(default=0.0, ge=0.0)
    random_state: int = 0


def _class_codes(values: pd.Series) -> np.ndarray:
    codes = values.map({c: i for i, c in enumerate(CLASSES)})
    if codes.isna().any():
        raise ValueError(f"unknown classes: {sorted(set(values[codes.isna()]))}")
    return codes.to_numpy(int)


def daily_confusions(rows: pd.DataFrame, day_codes: np.ndarray, n_days: int, column: str) -> np.ndarray:
    """(n_days, 9) counts of (true, predicted) class pairs per day, flattened row-major."""
    cells = _class_codes(rows["label"]) * len(CLASSES) + _class_codes(rows[column])
    flat = np.bincount(day_codes * 9 + cells, minlength=n_days * 9)
    return flat.reshape(n_days, 9).astype(np.float64)


def balanced_accuracy_of(confusions: np.ndarray) -> np.ndarray:
    """Balanced accuracy of (..., 9) confusion counts: mean recall over classes that occur."""
    matrix = confusions.reshape(*confusions.shape[:-1], 3, 3)
    support = matrix.sum(axis=-1)
    hits = np.diagonal(matrix, axis1=-2, axis2=-1)
    present = support > 0
    recall = np.where(present, hits / np.where(present, support, 1.0), 0.0)
    return recall.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _window_sums(values: np.ndarray, block: int) -> np.ndarray:
    """Sums over every window of `block` consecutive rows, one row per possible start."""
    cumulative = np.concatenate((np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)))
    return cumulative[block:] - cumulative[:-block]


def balanced_accuracy_score_of(rows: pd.DataFrame, column: str) -> float:
    codes = _class_codes(rows["label"]) * len(CLASSES) + _class_codes(rows[column])
    return float(balanced_accuracy_of(np.bincount(codes, minlength=9).astype(np.float64)))


def block_bootstrap_differences(
    model: np.ndarray, baseline: np.ndarray, block: int, samples: int, seed: int
) -> np.ndarray:
    """Balanced-accuracy differences (model - baseline) over `samples` moving-block resamples of days."""
    n_days = model.shape[0]
    block = max(1, min(block, n_days))
    model_windows = _window_sums(model, block)
    base_windows = _window_sums(baseline, block)
    per_sample = math.ceil(n_days / block)
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for start in range(0, samples, _CHUNK):
        count = min(_CHUNK, samples - start)
        picks = rng.integers(0, model_windows.shape[0], size=(count, per_sample))
        out[start : start + count] = balanced_accuracy_of(
            model_windows[picks].sum(axis=1)
        ) - balanced_accuracy_of(base_windows[picks].sum(axis=1))
    return out


def _risk_of(sums: np.ndarray, count: int, measure: RiskMeasure, periods_per_year: int) -> np.ndarray:
    """Sharpe or Sortino from (..., 3) sums of r, r squared and min(r, 0) squared over `count` days."""
    mean = sums[..., 0] / count
    if measure == "sharpe":
        variance = np.maximum(sums[..., 1] - count * mean**2, 0.0) / max(count - 1, 1)
    else:
        variance = sums[..., 2] / count
    spread = np.sqrt(variance)
    safe = np.where(spread > 1e-15, spread, 1.0)
    return np.where(spread > 1e-15, mean / safe * math.sqrt(periods_per_year), 0.0)


def risk_bootstrap_differences(
    model: pd.Series,
    baseline: pd.Series,
    measure: RiskMeasure,
    periods_per_year: int,
    block: int,
    samples: int,
    seed: int,
) -> np.ndarray:
    """Risk-measure differences (model - baseline) over moving-block resamples of paired daily returns."""
    paired = pd.concat([model, baseline], axis=1).fillna(0.0).to_numpy(float)
    n_days = paired.shape[0]
    if n_days < 2:
        return np.zeros(samples)
    block = max(1, min(block, n_days))
    stats = np.stack((paired, paired**2, np.minimum(paired, 0.0) ** 2), axis=-1)  # (days, 2, 3)
    windows = _window_sums(stats, block)
    per_sample = math.ceil(n_days / block)
    count = per_sample * block
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for start in range(0, samples, _CHUNK):
        size = min(_CHUNK, samples - start)
        picks = rng.integers(0, windows.shape[0], size=(size, per_sample))
        risk = _risk_of(windows[picks].sum(axis=1), count, measure, periods_per_year)
        out[start : start + size] = risk[:, 0] - risk[:, 1]
    return out


def fold_risks(returns: pd.Series, fold_of_day: pd.Series, measure: RiskMeasure, periods: int) -> list[float]:
    """The risk measure of a daily return series within each fold."""
    out = []
    for _, part in returns.groupby(fold_of_day.reindex(returns.index).to_numpy(), sort=True):
        values = part.to_numpy(float)
        out.append(sharpe_ratio(values, periods) if measure == "sharpe" else sortino_ratio(values, periods))
    return out


def evaluate_gate(
    oos: pd.DataFrame,
    backtests: dict[str, BacktestResult],
    config: GateConfig,
    horizon: int,
    backtest_label: str,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    """The gate's verdict on pooled out-of-sample predictions (columns day, label, model, baselines)."""
    day_codes, days = pd.factorize(oos["day"], sort=True)
    n_days = len(days)
    block = config.block_days or 2 * horizon
    model = daily_confusions(oos, day_codes, n_days, "model")
    model_score = float(balanced_accuracy_of(model.sum(axis=0)))
    quantile = 1.0 - config.confidence
    criteria: list[dict[str, Any]] = []
    for seed_offset, (column, name) in enumerate(BASELINES):
        baseline = daily_confusions(oos, day_codes, n_days, column)
        baseline_score = float(balanced_accuracy_of(baseline.sum(axis=0)))
        diffs = block_bootstrap_differences(
            model, baseline, block, config.bootstrap_samples, config.random_state + seed_offset
        )
        lower = float(np.quantile(diffs, quantile))
        fold_diffs = [
            balanced_accuracy_score_of(part, "model") - balanced_accuracy_score_of(part, column)
            for _, part in oos.groupby("fold", sort=True)
        ]
        criteria.append(
            {
                "criterion": f"balanced accuracy beats {name}",
                "metric": "balanced_accuracy",
                "baseline": column,
                "model": model_score,
                "baseline_value": baseline_score,
                "difference": model_score - baseline_score,
                "lower_bound": lower,
                "confidence": config.confidence,
                "p_value": float(np.mean(diffs <= config.min_margin)),
                "threshold": config.min_margin,
                "fold_differences": fold_diffs,
                "passed": bool(lower > config.min_margin and min(fold_diffs) > config.min_margin),
            }
        )
    model_result, hold_result = backtests["model"], backtests["buy_and_hold"]
    model_risk = model_result.risk(config.risk_measure)
    hold_risk = hold_result.risk(config.risk_measure)
    risk_diffs = risk_bootstrap_differences(
        model_result.returns,
        hold_result.returns,
        config.risk_measure,
        periods_per_year,
        block,
        config.bootstrap_samples,
        config.random_state + len(BASELINES),
    )
    risk_lower = float(np.quantile(risk_diffs, quantile))
    fold_of_day = oos.groupby("day")["fold"].first()
    measure, periods = config.risk_measure, periods_per_year
    risk_folds = [
        m - h
        for m, h in zip(
            fold_risks(model_result.returns, fold_of_day, measure, periods),
            fold_risks(hold_result.returns, fold_of_day, measure, periods),
            strict=True,
        )
    ]
    criteria.append(
        {
            "criterion": f"{config.risk_measure} beats buy and hold ({backtest_label})",
            "metric": config.risk_measure,
            "baseline": "buy_and_hold",
            "model": model_risk,
            "baseline_value": hold_risk,
            "difference": model_risk - hold_risk,
            "lower_bound": risk_lower,
            "confidence": config.confidence,
            "p_value": float(np.mean(risk_diffs <= config.risk_margin)),
            "threshold": config.risk_margin,
            "fold_differences": risk_folds,
            "passed": bool(risk_lower > config.risk_margin and min(risk_folds) > config.risk_margin),
        }
    )
    failed = [c["criterion"] for c in criteria if not c["passed"]]
    return {
        "passed": not failed,
        "verdict": "passed every criterion" if not failed else "refused: " + "; ".join(failed),
        "method": {
            "test": "paired moving-block bootstrap over out-of-sample days, and the same sign in every fold",
            "folds": int(oos["fold"].nunique()),
            "block_days": min(block, n_days),
            "resamples": config.bootstrap_samples,
            "out_of_sample_days": n_days,
            **config.model_dump(exclude={"block_days"}),
        },
        "criteria": criteria,
    }
