"""Classification metrics of one set of predictions, in the report's shape."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from recommender.labels import CLASSES


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1 (over all three classes) and the confusion matrix.

    The confusion matrix rows are true classes and columns predicted classes, both in CLASSES
    order, so matrices of different folds and strategies line up.
    """
    with warnings.catch_warnings():
        # A fold may lack a class entirely (e.g. no sell day in a calm year); the metrics stay defined.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1_score(y_true, y_pred, labels=list(CLASSES), average="macro", zero_division=0)),
        "confusion_matrix": {
            "labels": list(CLASSES),
            "matrix": confusion_matrix(y_true, y_pred, labels=list(CLASSES)).tolist(),
        },
    }
