"""The live scorecard: did published signals keep the promise their training report made?

Every buy or sell signal is scored once its horizon has passed: the close `horizon` bars after
the signal's bar (bars of the signal's interval: `daily_bars` for daily signals, `bars_1m`
otherwise) against the signal's price. A model signal uses its model's label rule (horizon,
buy and sell thresholds from `label_spec`); a rule signal uses `RULES_HORIZON` bars and the
direction alone. Figures are grouped per source (the rules, each model), symbol and interval,
beside the model's out-of-sample figures from training. Holds are not scored: they trade nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.http.endpoints import Endpoint, Inputs, json_ok
from api.http.params import SYMBOL_PARAM_PATTERN, TimeRange
from api.settings import POOL

RULES_HORIZON = 5

SCORECARD_SQL = """
WITH scored AS (
    SELECT s.symbol, s.ts, s.source, s.action, s.price::float8 AS price,
           coalesce(s.reasons ->> 'interval', '1m') AS bar_interval,
           coalesce((m.label_spec ->> 'horizon')::int, %(rules_horizon)s) AS horizon,
           coalesce((m.label_spec ->> 'buy_threshold')::float8, 0.0) AS buy_threshold,
           coalesce((m.label_spec ->> 'sell_threshold')::float8, 0.0) AS sell_threshold,
           m.metrics AS model_metrics
    FROM signals s
    LEFT JOIN models m ON s.source = 'model:' || m.id
    WHERE s.action IN ('buy', 'sell')
      AND (%(symbol)s::text IS NULL OR s.symbol = %(symbol)s)
      AND (%(start)s::timestamptz IS NULL OR s.ts >= %(start)s)
      AND (%(end)s::timestamptz IS NULL OR s.ts < %(end)s)
), outcomes AS (
    SELECT scored.*,
           CASE WHEN bar_interval = '1d' THEN (
               SELECT d.close::float8 FROM daily_bars d
               WHERE d.symbol = scored.symbol AND d.day > (scored.ts AT TIME ZONE 'UTC')::date
               ORDER BY d.day OFFSET scored.horizon - 1 LIMIT 1)
           ELSE (
               SELECT b.close::float8 FROM bars_1m b
               WHERE b.symbol = scored.symbol AND b.bucket > scored.ts
               ORDER BY b.bucket OFFSET scored.horizon - 1 LIMIT 1)
           END AS later_close
    FROM scored
), judged AS (
    SELECT *, later_close / price - 1.0 AS forward_return,
           CASE WHEN action = 'buy' THEN later_close / price - 1.0 > buy_threshold
                ELSE later_close / price - 1.0 < sell_threshold END AS hit
    FROM outcomes
)
SELECT source, symbol, bar_interval AS interval,
       count(*) FILTER (WHERE later_close IS NOT NULL) AS scored,
       count(*) FILTER (WHERE later_close IS NULL) AS pending,
       count(*) FILTER (WHERE hit) AS hits,
       avg(forward_return) FILTER (WHERE later_close IS NOT NULL AND action = 'buy') AS avg_forward_return_buy,
       avg(forward_return) FILTER (WHERE later_close IS NOT NULL AND action = 'sell') AS avg_forward_return_sell,
       max(horizon) AS horizon,
       (array_agg(model_metrics))[1] AS model_metrics
FROM judged
GROUP BY source, symbol, bar_interval
ORDER BY source, symbol, bar_interval
"""


class ScorecardQuery(TimeRange):
    symbol: str | None = Field(default=None, pattern=SYMBOL_PARAM_PATTERN)


class ScoreLine(BaseModel):
    source: str = Field(description="rules or model:<id>")
    symbol: str
    interval: str
    horizon: int = Field(description="bars after the signal's bar at which its outcome is read")
    scored: int = Field(description="buy and sell signals whose horizon has passed")
    pending: int = Field(description="buy and sell signals still inside their horizon")
    hits: int
    hit_rate: float | None = Field(description="hits / scored; null before the first scored signal")
    avg_forward_return_buy: float | None
    avg_forward_return_sell: float | None
    out_of_sample: dict[str, Any] | None = Field(
        description="a model's training figures: balanced accuracy, backtest Sharpe and total return"
    )


class Scorecard(BaseModel):
    items: list[ScoreLine]


def _promise(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The model's out-of-sample figures, to read the live ones against."""
    if not metrics:
        return None
    model = ((metrics.get("evaluation") or {}).get("metrics") or {}).get("model") or {}
    backtest = ((metrics.get("backtest") or {}).get("strategies") or {}).get("model") or {}
    return {
        "balanced_accuracy": model.get("balanced_accuracy"),
        "accuracy": model.get("accuracy"),
        "backtest_sharpe": backtest.get("sharpe"),
        "backtest_total_return": backtest.get("total_return"),
    }


async def scorecard_lines(conn: AsyncConnection, q: ScorecardQuery) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    symbol = q.symbol.upper() if q.symbol else None
    await cur.execute(
        SCORECARD_SQL, {"symbol": symbol, "start": q.from_, "end": q.to, "rules_horizon": RULES_HORIZON}
    )
    lines = []
    for row in await cur.fetchall():
        metrics = row.pop("model_metrics")
        scored = int(row["scored"])
        lines.append(
            {
                **row,
                "hit_rate": row["hits"] / scored if scored else None,
                "out_of_sample": _promise(metrics),
            }
        )
    return lines


async def scorecard(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    query = inputs.query_as(ScorecardQuery)
    async with request.app[POOL].connection() as conn:
        items = await scorecard_lines(conn, query)
    return json_ok({"items": items})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/scorecard",
        scorecard,
        "Live outcome of published signals, per source, symbol and interval",
        "signals",
        query=ScorecardQuery,
        response=Scorecard,
        not_found=False,
        description="Each buy or sell signal is scored once its horizon has passed: the close `horizon` "
        "bars later against the signal's price, by the model's label rule (rules: the direction). "
        "Models carry their out-of-sample training figures for comparison.",
    ),
)
