"""Writes a training report as JSON and its equity curves as a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in containers or CI; must precede pyplot's import

import matplotlib.pyplot as plt
import pandas as pd


def write_report_json(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_equity_chart(curves: dict[str, pd.Series], path: Path, title: str) -> Path:
    """One line per strategy, growth of 1 unit over the out-of-sample period."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(10, 5), dpi=100)
    try:
        for name, equity in curves.items():
            if len(equity):
                axes.plot(pd.to_datetime(equity.index), equity.to_numpy(float), label=name, linewidth=1.2)
        axes.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
        axes.set_title(title)
        axes.set_ylabel("equity (start = 1)")
        axes.legend(loc="best")
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path
