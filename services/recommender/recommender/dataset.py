"""The training table: one row per (symbol, day) with features, label, rule verdict and returns.

Daily bars are split- and dividend-adjusted with adj_close / close before anything is computed,
so a 2:1 split is not mistaken for a 50 % crash. Every column of a row is computed from data up
to that row's day except `label` and the two `exec_return_*` columns (the future, by definition),
which the evaluation only ever uses as targets and realised returns. The execution returns start
at bar t+1 (see backtest): what acting on row t's signal earns, never t's own close.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import psycopg

from recommender.backtest import execution_returns
from recommender.features import FEATURE_NAMES, build_features
from recommender.labels import LabelSpec, make_labels
from recommender.rule_engine import RuleEngine, RuleIndicators
from recommender.rules_config import RulesConfig

DAILY_BARS_SQL = """
SELECT symbol, day, open, high, low, close, adj_close, volume
FROM daily_bars
WHERE (%(symbols)s::text[] IS NULL OR symbol = ANY(%(symbols)s::text[]))
  AND (%(start)s::date IS NULL OR day >= %(start)s::date)
  AND (%(end)s::date IS NULL OR day <= %(end)s::date)
ORDER BY symbol, day
"""


def load_daily_bars(
    conn: psycopg.Connection,
    symbols: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, pd.DataFrame]:
    """Daily bars per symbol from PostgreSQL, as float frames indexed by day."""
    with conn.cursor() as cur:
        cur.execute(DAILY_BARS_SQL, {"symbols": symbols, "start": start, "end": end})
        rows = cur.fetchall()
    frame = pd.DataFrame(
        rows, columns=["symbol", "day", "open", "high", "low", "close", "adj_close", "volume"]
    )
    result: dict[str, pd.DataFrame] = {}
    for symbol, group in frame.groupby("symbol", sort=True):
        bars = group.drop(columns="symbol").set_index("day")
        result[str(symbol)] = bars.astype(
            {c: float for c in ("open", "high", "low", "close", "adj_close", "volume")}
        )
    return result


def adjust_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Scale OHLC by adj_close / close (and volume inversely) so the series has no split jumps."""
    adjusted = bars.copy()
    if "adj_close" in bars:
        factor = (bars["adj_close"] / bars["close"]).where(bars["adj_close"].notna(), 1.0)
    else:
        factor = pd.Series(1.0, index=bars.index)
    for column in ("open", "high", "low", "close"):
        adjusted[column] = bars[column] * factor
    adjusted["volume"] = bars["volume"] / factor
    return adjusted[["open", "high", "low", "close", "volume"]]


def rule_verdicts(close: pd.Series, config: RulesConfig) -> tuple[pd.Series, pd.Series]:
    """The rule engine's action and confidence per bar (None during warm-up)."""
    indicators = RuleIndicators(config)
    engine = RuleEngine(config)
    actions: list[str | None] = []
    confidences: list[float] = []
    for value in close.to_numpy(float):
        decision = engine.decide(indicators.update(float(value)))
        actions.append(decision.action if decision.ready else None)
        confidences.append(decision.confidence)
    return (
        pd.Series(actions, index=close.index, dtype=object),
        pd.Series(confidences, index=close.index, dtype=float),
    )


def build_symbol_rows(symbol: str, bars: pd.DataFrame, spec: LabelSpec, config: RulesConfig) -> pd.DataFrame:
    adjusted = adjust_bars(bars.sort_index())
    close = adjusted["close"]
    table = build_features(adjusted)
    table["label"] = make_labels(close, spec)
    table["rules_action"], table["rules_confidence"] = rule_verdicts(close, config)
    table["exec_return_open"] = execution_returns(adjusted["open"])
    table["exec_return_close"] = execution_returns(close)
    table["close"] = close
    table["symbol"] = symbol
    table.index.name = "day"
    return table.reset_index()


def build_dataset(
    bars_by_symbol: dict[str, pd.DataFrame], spec: LabelSpec, config: RulesConfig
) -> pd.DataFrame:
    """All symbols' usable rows (features complete, label known), ordered by day then symbol."""
    parts = [build_symbol_rows(s, b, spec, config) for s, b in sorted(bars_by_symbol.items()) if len(b)]
    if not parts:
        raise ValueError("no daily bars to train on")
    table = pd.concat(parts, ignore_index=True)
    usable = (
        table[list(FEATURE_NAMES)].notna().all(axis=1)
        & table["label"].notna()
        & table["rules_action"].notna()
    )
    executable = np.isfinite(table["exec_return_open"]) & np.isfinite(table["exec_return_close"])
    table = table[usable & executable]
    table["day"] = pd.to_datetime(table["day"])
    return table.sort_values(["day", "symbol"], kind="stable").reset_index(drop=True)
