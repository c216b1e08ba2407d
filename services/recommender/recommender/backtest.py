"""Next-bar backtests of action series, after costs, beside buy-and-hold on the same days.

Timing (the reason this module exists): the action decided on bar t is known only once t has
closed, so it is executed at bar t+1's open (`next_open`, the default) or at bar t+1's close
(`next_close`) — never at t's own close. The position it opens is held until the next execution
price, so row t earns `exec_return` = price[t+2] / price[t+1] - 1 with price the open or the
close. Both prices lie strictly after the signal bar; the dataset computes that column once
(`execution_returns`) and the backtest reads nothing else about prices, so a one-bar look-ahead
cannot enter the P&L.

Positions: `long_flat` — buy goes long one unit, sell goes flat; `long_short` — buy goes long,
sell goes short; a hold keeps the previous position. Every change of position pays
`cost_bps + slippage_bps` basis points of the traded amount. Symbols are equally weighted: the
portfolio's return for a signal day is the mean over the symbols with a row that day, and
buy-and-hold is scored on exactly the same rows (paying its one entry).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

Execution = Literal["next_open", "next_close"]
Side = Literal["long_flat", "long_short"]
RiskMeasure = Literal["sharpe", "sortino"]
EXECUTIONS: tuple[str, ...] = ("next_open", "next_close")
SIDES: tuple[str, ...] = ("long_flat", "long_short")


class BacktestSpec(BaseModel):
    """How actions become trades; recorded in every report so its figures can be reproduced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution: Execution = "next_open"
    side: Side = "long_flat"
    cost_bps: float = Field(default=5.0, ge=0.0, description="commission per unit traded")
    slippage_bps: float = Field(default=2.0, ge=0.0, description="price impact per unit traded")
    periods_per_year: int = Field(default=252, ge=1)

    @property
    def return_column(self) -> str:
        return execution_return_column(self.execution)

    @property
    def cost_per_unit(self) -> float:
        return (self.cost_bps + self.slippage_bps) / 10_000.0


def execution_return_column(execution: str) -> str:
    return f"exec_return_{execution.removeprefix('next_')}"


def execution_returns(prices: pd.Series) -> pd.Series:
    """price[t+2] / price[t+1] - 1: what a position decided at t and executed at t+1 earns."""
    return prices.shift(-2) / prices.shift(-1) - 1.0


@dataclass(frozen=True)
class BacktestResult:
    equity: pd.Series
    returns: pd.Series
    total_return: float
    sharpe: float
    sortino: float
    max_drawdown: float
    trades: int
    turnover: float
    exposure: float

    def risk(self, measure: RiskMeasure) -> float:
        return self.sharpe if measure == "sharpe" else self.sortino

    def summary(self) -> dict[str, float | int]:
        return {
            "total_return": self.total_return,
            "sharpe": self.sharpe,
            "sortino": self.sortino,
            "max_drawdown": self.max_drawdown,
            "trades": self.trades,
            "turnover": self.turnover,
            "exposure": self.exposure,
        }


def positions_from_actions(actions: Sequence[str | None], side: Side = "long_flat") -> np.ndarray:
    """Target position after each action: 1 long, 0 flat, -1 short (long_short only); starts flat."""
    short = -1.0 if side == "long_short" else 0.0
    positions = np.zeros(len(actions))
    current = 0.0
    for i, action in enumerate(actions):
        if action == "buy":
            current = 1.0
        elif action == "sell":
            current = short
        positions[i] = current
    return positions


def sharpe_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    if returns.size < 2:
        return 0.0
    spread = float(np.std(returns, ddof=1))
    return 0.0 if spread <= 1e-15 else float(np.mean(returns)) / spread * math.sqrt(periods_per_year)


def sortino_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """Mean over downside deviation (target 0), annualised: only losses count as risk."""
    if returns.size < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return 0.0 if downside <= 1e-15 else float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough loss as a negative fraction (0.0 when equity never fell)."""
    if equity.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return float(np.min(equity / peaks - 1.0))


def run_backtest(rows: pd.DataFrame, action_column: str | None, spec: BacktestSpec) -> BacktestResult:
    """Backtest one strategy over `rows` (day, symbol, the spec's exec_return column, actions).

    `action_column=None` is buy-and-hold: long on every row, from the first to the last.
    Turnover is the annualised traded amount per symbol (1.0 = one full position per year);
    exposure the mean absolute position over all rows.
    """
    column = spec.return_column
    daily_parts = []
    trades = 0
    traded = 0.0
    exposure_sum = 0.0
    for _, group in rows.sort_values("day", kind="stable").groupby("symbol", sort=True):
        if action_column is None:
            positions = np.ones(len(group))
        else:
            positions = positions_from_actions(group[action_column].tolist(), spec.side)
        changes = np.abs(np.diff(np.concatenate(([0.0], positions))))
        trades += int(np.count_nonzero(changes))
        traded += float(changes.sum())
        exposure_sum += float(np.abs(positions).sum())
        returns = positions * group[column].to_numpy(float) - spec.cost_per_unit * changes
        daily_parts.append(pd.Series(returns, index=group["day"].to_numpy()))
    if not daily_parts:
        empty = pd.Series(dtype=float)
        return BacktestResult(empty, empty, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0)
    daily = pd.concat(daily_parts).groupby(level=0).mean().sort_index()
    equity = (1.0 + daily).cumprod()
    values = equity.to_numpy(float)
    symbol_days = len(rows)
    return BacktestResult(
        equity=equity,
        returns=daily,
        total_return=float(values[-1] - 1.0),
        sharpe=sharpe_ratio(daily.to_numpy(float), spec.periods_per_year),
        sortino=sortino_ratio(daily.to_numpy(float), spec.periods_per_year),
        max_drawdown=max_drawdown(values),
        trades=trades,
        turnover=traded / symbol_days * spec.periods_per_year if symbol_days else 0.0,
        exposure=exposure_sum / symbol_days if symbol_days else 0.0,
    )
