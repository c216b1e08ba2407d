"""The estimators a model can be trained with, each wrapped in a scaling Pipeline.

Scaling lives inside the pipeline so that, during walk-forward evaluation, it is fitted on each
fold's training rows only (fitting it on all rows would leak test-period statistics), and so the
stored artifact carries its own scaler.
"""

from __future__ import annotations

from typing import Any, Literal

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Algorithm = Literal["hist_gradient_boosting", "logistic_regression", "random_forest"]
ALGORITHMS: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression", "random_forest")


def estimator_params(algorithm: Algorithm, random_state: int) -> dict[str, Any]:
    """Hyper-parameters per algorithm: conservative, since daily returns are mostly noise."""
    if algorithm == "hist_gradient_boosting":
        return {
            "max_iter": 150,
            "learning_rate": 0.05,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 40,
            "l2_regularization": 1.0,
            "class_weight": "balanced",
            "random_state": random_state,
        }
    if algorithm == "logistic_regression":
        return {"C": 0.5, "max_iter": 2000, "class_weight": "balanced"}
    if algorithm == "random_forest":
        return {
            "n_estimators": 150,
            "min_samples_leaf": 25,
            "max_features": "sqrt",
            "class_weight": "balanced",
            "random_state": random_state,
            "n_jobs": 1,
        }
    raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def make_pipeline(algorithm: Algorithm, random_state: int = 0) -> Pipeline:
    params = estimator_params(algorithm, random_state)
    estimator: Any
    if algorithm == "hist_gradient_boosting":
        estimator = HistGradientBoostingClassifier(**params)
    elif algorithm == "logistic_regression":
        estimator = LogisticRegression(**params)
    else:
        estimator = RandomForestClassifier(**params)
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])
