"""Training and honest evaluation: walk-forward folds, two baselines, backtests, final fit.

Every metric in the report comes from out-of-sample predictions: each fold's model (and its
scaler) is fitted on that fold's training rows only and scored on the fold's test rows; the
overall figures pool those test rows. The baselines are scored on exactly the same rows: always
hold, the majority class of the fold's training labels, and the rule engine's verdict (which
needs no fitting). Backtests trade each row's action at the next bar (see backtest), and the
gate (see gate) decides on these pooled figures whether the model may be activated. The model
that is finally stored is refitted on all rows; its quality is the one the folds measured.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline
from tqdm import tqdm

from recommender.backtest import SIDES, BacktestResult, BacktestSpec, run_backtest
from recommender.features import FEATURE_NAMES
from recommender.gate import GateConfig, evaluate_gate
from recommender.labels import LabelSpec
from recommender.metrics import classification_metrics
from recommender.model_factory import Algorithm, estimator_params, make_pipeline
from recommender.walk_forward import Fold, walk_forward_folds

STRATEGIES = ("model", "always_hold", "majority", "rules")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Algorithm = "logistic_regression"
    label: LabelSpec = LabelSpec()
    folds: int = Field(default=5, ge=1, le=50)
    min_train_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    backtest: BacktestSpec = BacktestSpec()
    gate: GateConfig = GateConfig()
    random_state: int = 0


@dataclass
class TrainingResult:
    report: dict[str, Any]
    pipeline: Pipeline
    equity_curves: dict[str, pd.Series]
    predictions: pd.DataFrame


def library_versions() -> dict[str, str]:
    """Versions that decide whether a stored pipeline can be unpickled and behaves the same."""
    return {
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


def _day(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def evaluate_folds(
    dataset: pd.DataFrame, config: TrainConfig, folds: list[Fold], days: np.ndarray, progress: bool
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Fit and score each fold; returns per-fold reports and the pooled out-of-sample predictions."""
    features = list(FEATURE_NAMES)
    day_index = np.searchsorted(days, dataset["day"].to_numpy())
    fold_reports: list[dict[str, Any]] = []
    predictions: list[pd.DataFrame] = []
    for fold in tqdm(folds, desc="walk-forward folds", unit="fold", disable=not progress):
        train = dataset[day_index < fold.train_end]
        test = dataset[(day_index >= fold.test_start) & (day_index < fold.test_end)]
        pipeline = make_pipeline(config.algorithm, config.random_state)
        pipeline.fit(train[features].to_numpy(float), train["label"].to_numpy(str))
        majority = str(train["label"].value_counts().idxmax())
        out = test[["day", "symbol", "label", "exec_return_open", "exec_return_close", "close"]].copy()
        out["model"] = pipeline.predict(test[features].to_numpy(float))
        out["always_hold"] = "hold"
        out["majority"] = majority
        out["rules"] = test["rules_action"].to_numpy(str)
        out["fold"] = fold.number
        predictions.append(out)
        fold_reports.append(
            {
                "fold": fold.number,
                "train_from": _day(days[0]),
                "train_to": _day(days[fold.train_end - 1]),
                "test_from": _day(days[fold.test_start]),
                "test_to": _day(days[fold.test_end - 1]),
                "gap_days": fold.test_start - fold.train_end,
                "n_train": len(train),
                "n_test": len(test),
                "majority_class": majority,
                "metrics": {
                    s: classification_metrics(out["label"].tolist(), out[s].tolist()) for s in STRATEGIES
                },
            }
        )
    return fold_reports, pd.concat(predictions, ignore_index=True)


def run_training(dataset: pd.DataFrame, config: TrainConfig, *, progress: bool = True) -> TrainingResult:
    """Evaluate by walk-forward folds, backtest the out-of-sample actions, then fit the final model."""
    days = np.sort(dataset["day"].unique())
    folds = walk_forward_folds(
        len(days), config.folds, gap=config.label.horizon, min_train_fraction=config.min_train_fraction
    )
    fold_reports, oos = evaluate_folds(dataset, config, folds, days, progress)
    overall = {s: classification_metrics(oos["label"].tolist(), oos[s].tolist()) for s in STRATEGIES}
    by_side: dict[str, dict[str, BacktestResult]] = {}
    for side in SIDES:
        spec = config.backtest.model_copy(update={"side": side})
        by_side[side] = {s: run_backtest(oos, s, spec) for s in STRATEGIES}
        by_side[side]["buy_and_hold"] = run_backtest(oos, None, spec)
    backtests = by_side[config.backtest.side]
    spec = config.backtest
    backtest_label = (
        f"{spec.side}, {spec.execution.replace('_', ' ')}, {spec.cost_bps:g} + {spec.slippage_bps:g} bps"
    )
    gate = evaluate_gate(
        oos, backtests, config.gate, config.label.horizon, backtest_label, spec.periods_per_year
    )

    final = make_pipeline(config.algorithm, config.random_state)
    final.fit(dataset[list(FEATURE_NAMES)].to_numpy(float), dataset["label"].to_numpy(str))

    report = {
        "algorithm": config.algorithm,
        "params": estimator_params(config.algorithm, config.random_state),
        "features": list(FEATURE_NAMES),
        "label_spec": config.label.model_dump(),
        "library_versions": library_versions(),
        "data": {
            "symbols": sorted(dataset["symbol"].unique().tolist()),
            "train_from": _day(days[0]),
            "train_to": _day(days[-1]),
            "n_rows": len(dataset),
            "n_days": len(days),
            "class_counts": {str(k): int(v) for k, v in dataset["label"].value_counts().items()},
        },
        "evaluation": {
            "scheme": "walk-forward, expanding window",
            "folds_requested": config.folds,
            "gap_days": config.label.horizon,
            "min_train_fraction": config.min_train_fraction,
            "out_of_sample_from": _day(days[folds[0].test_start]),
            "out_of_sample_to": _day(days[folds[-1].test_end - 1]),
            "folds": fold_reports,
            "overall": {"n_out_of_sample": len(oos), "metrics": overall},
        },
        "backtest": {
            "rules": (
                "the action of day t trades at day t+1's "
                + ("open" if spec.execution == "next_open" else "close")
                + "; long_flat: buy goes long, sell goes flat; long_short: sell goes short; hold keeps "
                "the position; equal weight per symbol; buy_and_hold is long on the same rows"
            ),
            **spec.model_dump(),
            "from": _day(oos["day"].min()),
            "to": _day(oos["day"].max()),
            "strategies": {name: result.summary() for name, result in backtests.items()},
            "by_side": {
                side: {name: result.summary() for name, result in results.items()}
                for side, results in by_side.items()
            },
        },
        "gate": gate,
    }
    return TrainingResult(
        report=report,
        pipeline=final,
        equity_curves={k: backtests[k].equity for k in ("model", "rules", "buy_and_hold")},
        predictions=oos,
    )
