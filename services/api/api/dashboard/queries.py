"""SQL behind the dashboard's own endpoints: watch list summary and the model registry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

SPARKLINE_POINTS = 120

ACTIVE_SYMBOLS = "SELECT symbol, name FROM symbols WHERE active ORDER BY symbol"

# The previous close is the newest close before the session day began, from whichever source has
# it: a daily bar (history backfill) or the last 1-minute bar of an earlier day (live data).
REFERENCES = """
SELECT s.symbol, d.day AS daily_day, d.close AS daily_close, m.bucket AS minute_at, m.close AS minute_close,
       o.open AS session_open
FROM unnest(%(symbols)s::text[]) AS s(symbol)
LEFT JOIN LATERAL (SELECT day, close FROM daily_bars WHERE symbol = s.symbol AND day < %(day)s
                   ORDER BY day DESC LIMIT 1) d ON true
LEFT JOIN LATERAL (SELECT bucket, close FROM bars_1m WHERE symbol = s.symbol AND bucket < %(day_start)s
                   ORDER BY bucket DESC LIMIT 1) m ON true
LEFT JOIN LATERAL (SELECT open FROM bars_1m WHERE symbol = s.symbol AND bucket >= %(day_start)s
                   ORDER BY bucket LIMIT 1) o ON true
"""

SPARKLINES = """
SELECT symbol, array_agg(close ORDER BY bucket) AS closes FROM (
    SELECT symbol, bucket, close, row_number() OVER (PARTITION BY symbol ORDER BY bucket DESC) AS rn
    FROM bars_1m WHERE symbol = ANY(%(symbols)s) AND bucket >= %(since)s
) recent WHERE rn <= %(points)s GROUP BY symbol
"""

MODELS = """
SELECT id, created_at, algorithm, train_from, train_to, active,
       metrics - 'equity_chart_png' AS metrics, metrics ? 'equity_chart_png' AS has_equity_chart
FROM models ORDER BY active DESC, created_at DESC, id LIMIT %s
"""

EQUITY_CHART = "SELECT metrics ->> 'equity_chart_png' FROM models WHERE id = %s"


def _price(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


async def active_symbols(conn: AsyncConnection) -> list[tuple[str, str | None]]:
    cur = await conn.execute(ACTIVE_SYMBOLS)
    return [(row[0], row[1]) for row in await cur.fetchall()]


async def reference_prices(
    conn: AsyncConnection, symbols: list[str], day: dt.date, day_start: dt.datetime
) -> dict[str, tuple[str | None, str]]:
    """symbol -> (reference price, its kind): the previous close, else today's first price."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(REFERENCES, {"symbols": symbols, "day": day, "day_start": day_start})
    out: dict[str, tuple[str | None, str]] = {}
    for row in await cur.fetchall():
        daily, minute = row["daily_close"], row["minute_close"]
        if minute is not None and (daily is None or row["minute_at"].date() >= row["daily_day"]):
            out[row["symbol"]] = (_price(minute), "previous_close")
        elif daily is not None:
            out[row["symbol"]] = (_price(daily), "previous_close")
        else:
            out[row["symbol"]] = (_price(row["session_open"]), "session_open")
    return out


async def sparklines(conn: AsyncConnection, symbols: list[str], since: dt.datetime) -> dict[str, list[float]]:
    cur = await conn.execute(SPARKLINES, {"symbols": symbols, "since": since, "points": SPARKLINE_POINTS})
    return {symbol: [float(c) for c in closes] for symbol, closes in await cur.fetchall()}


async def list_models(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(MODELS, (limit,))
    rows = await cur.fetchall()
    for row in rows:
        row["created_at"] = int(row["created_at"].timestamp() * 1000)
        for field in ("train_from", "train_to"):
            row[field] = row[field].isoformat() if row[field] else None
    return rows


async def equity_chart_base64(conn: AsyncConnection, model_id: str) -> str | None:
    cur = await conn.execute(EQUITY_CHART, (model_id,))
    row = await cur.fetchone()
    return row[0] if row else None
