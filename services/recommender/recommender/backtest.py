"""A simple long/flat backtest of action series, with transaction costs, beside buy-and-hold.

Rules: a buy action goes (or stays) long one unit, a sell action goes (or stays) flat, a hold
keeps the previous position. The position taken at the close of day t earns the return from t to
t+1 (`next_return`), so no strategy trades on a price it could not have seen. Every position
change costs `cost_bps` basis points of the position. Symbols are equally weighted: the
portfolio's daily return is the mean over the symbols trading that day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BacktestResult:
    equity: pd.Series
    total_return: float
    sharpe: float
    max_drawdown: float
    trades: int

    def summary(self) -> dict[str, float | int]:
        return {
            "total_return": self.total_return,
            "sharpe": self.sharpe,
            "max_drawdown": self.max_drawdown,
            "trades": self.trades,
        }


def positions_from_actions(actions: Sequence[str | None]) -> np.ndarray:
    """1.0 while long, 0.0 while flat; starts flat."""
    positions = np.zeros(len(actions))
    current = 0.0
    for i, action in enumerate(actions):
        if action == "buy":
            current = 1.0
        elif action == "sell":
            current = 0.0
        positions[i] = current
    return positions


def sharpe_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    if returns.size < 2:
        return 0.0
    spread = float(np.std(returns, ddof=1))
    return 0.0 if spread <= 1e-15 else float(np.mean(returns)) / spread * math.sqrt(periods_per_year)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough loss as a negative fraction (0.0 when equity never fell)."""
    if equity.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return float(np.min(equity / peaks - 1.0))


def run_backtest(
    rows: pd.DataFrame, action_column: str | None, cost_bps: float, periods_per_year: int = 252
) -> BacktestResult:
    """Backtest one strategy over `rows` (day, symbol, next_return and the action column).

    `action_column=None` is buy-and-hold: long from the first row to the last.
    """
    cost = cost_bps / 10_000.0
    daily_parts = []
    trades = 0
    for _, group in rows.sort_values("day", kind="stable").groupby("symbol", sort=True):
        if action_column is None:
            positions = np.ones(len(group))
        else:
            positions = positions_from_actions(group[action_column].tolist())
        changes = np.abs(np.diff(np.concatenate(([0.0], positions))))
        trades += int(np.count_nonzero(changes))
        returns = positions * group["next_return"].to_numpy(float) - cost * changes
        daily_parts.append(pd.Series(returns, index=group["day"].to_numpy()))
    if not daily_parts:
        empty = pd.Series(dtype=float)
        return BacktestResult(empty, 0.0, 0.0, 0.0, 0)
    daily = pd.concat(daily_parts).groupby(level=0).mean().sort_index()
    equity = (1.0 + daily).cumprod()
    values = equity.to_numpy(float)
    return BacktestResult(
        equity=equity,
        total_return=float(values[-1] - 1.0),
        sharpe=sharpe_ratio(daily.to_numpy(float), periods_per_year),
        max_drawdown=max_drawdown(values),
        trades=trades,
    )
