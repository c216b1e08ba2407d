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


def _gate_lines(report: dict[str, Any]) -> list[str]:
    """The text under the chart: how the backtest traded and what the gate decided, with numbers."""
    backtest = report.get("backtest", {})
    gate = report.get("gate", {})
    activation = report.get("activation", {})
    strategies = backtest.get("strategies", {})
    lines = [
        f"Backtest: {backtest.get('side', '?')}, signal of day t trades at t+1's "
        f"{str(backtest.get('execution', 'next_open')).removeprefix('next_')}; "
        f"costs {backtest.get('cost_bps', 0):g} bps + slippage {backtest.get('slippage_bps', 0):g} bps per unit traded",
        *(
            f"  {name:<13} return {s['total_return']:+8.1%}  Sharpe {s['sharpe']:6.2f}  "
            f"max drawdown {s['max_drawdown']:7.1%}  exposure {s['exposure']:5.1%}  trades {s['trades']}"
            for name, s in strategies.items()
            if name in ("model", "rules", "buy_and_hold")
        ),
    ]
    verdict = "PASSED" if gate.get("passed") else "REFUSED"
    if activation:
        state = "activated" if activation.get("activated") else "not activated"
        verdict += f" -> {state}" + (" (forced)" if activation.get("forced") else "")
    lines.append(f"Gate: {verdict}")
    for c in gate.get("criteria", []):
        bound = f", lower bound {c['lower_bound']:+.4f} @ {c['confidence']:.0%}" if "lower_bound" in c else ""
        if c.get("fold_differences"):
            bound += f", worst fold {min(c['fold_differences']):+.4f}"
        lines.append(
            f"  [{'pass' if c['passed'] else 'FAIL'}] {c['criterion']}: {c['model']:.4f} vs "
            f"{c['baseline_value']:.4f} (diff {c['difference']:+.4f}{bound})"
        )
    return lines


def write_equity_chart(
    curves: dict[str, pd.Series], path: Path, title: str, report: dict[str, Any] | None = None
) -> Path:
    """Growth of 1 unit per strategy over the out-of-sample period, fold starts marked, and (given
    the report) the backtest's costs and the gate's verdict with its key numbers below the chart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = _gate_lines(report) if report else []
    figure = plt.figure(figsize=(11, 5 + 0.22 * len(lines)), dpi=100)
    grid = figure.add_gridspec(2, 1, height_ratios=[5, max(0.22 * len(lines), 0.01)])
    axes = figure.add_subplot(grid[0])
    try:
        for name, equity in curves.items():
            if len(equity):
                axes.plot(pd.to_datetime(equity.index), equity.to_numpy(float), label=name, linewidth=1.2)
        for number, fold in enumerate((report or {}).get("evaluation", {}).get("folds", [])):
            axes.axvline(
                pd.Timestamp(fold["test_from"]),
                color="black",
                linewidth=0.6,
                linestyle=":",
                label="fold start" if number == 0 else None,
            )
        axes.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
        axes.set_title(title)
        axes.set_ylabel("equity (start = 1)")
        axes.legend(loc="best")
        axes.grid(alpha=0.3)
        if lines:
            text = figure.add_subplot(grid[1])
            text.axis("off")
            text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=8)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path
