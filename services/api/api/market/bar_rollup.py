"""OHLCV bars of any interval, rolled up in SQL from `bars_1m` (and, for days, `daily_bars`).

A coarser bar is the 1-minute bars whose bucket falls in it: open of the first, close of the
last, extreme high and low, summed volume and trades (the aggregates of stocktrack_common.bars,
the one bar model). Only complete bars are returned: the 1-minute rows are read from the start
of the bar holding `from`, and bars starting before `from` are dropped afterwards. Daily bars
come from the daily history where it has the day (it holds backfilled days the minute table
never saw) and from the minute bars for the other days.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from stocktrack_common.bars import COARSER_FROM_1M_AGGREGATES

STEPS: dict[str, dt.timedelta] = {
    "1m": dt.timedelta(minutes=1),
    "5m": dt.timedelta(minutes=5),
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "1d": dt.timedelta(days=1),
}
# Far outside any real data, but inside what PostgreSQL's timestamptz and Python's datetime hold.
_MIN_TIME = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_MAX_TIME = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)

_MINUTE_SQL = """
SELECT bucket, open, high, low, close, volume, trades FROM bars_1m
WHERE symbol = %(symbol)s AND bucket >= %(start)s AND bucket < %(end)s
ORDER BY bucket DESC LIMIT %(limit)s
"""

_ROLLUP_CTE = f"""
WITH minute AS (
    SELECT date_bin(%(step)s, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS ts,
           bucket, open, high, low, close, volume, trades, first_ts, last_ts
    FROM bars_1m
    WHERE symbol = %(symbol)s
      AND bucket >= date_bin(%(step)s, %(start)s, TIMESTAMPTZ '2000-01-01 00:00:00+00')
      AND bucket < %(end)s
), rolled AS (
    SELECT ts, {COARSER_FROM_1M_AGGREGATES}
    FROM minute GROUP BY ts
)
"""

_ROLLUP_SQL = (
    _ROLLUP_CTE
    + """
SELECT ts, open, high, low, close, volume, trades FROM rolled
WHERE ts >= %(start)s AND ts + %(step)s <= %(end)s
ORDER BY ts DESC LIMIT %(limit)s
"""
)

_DAILY_SQL = (
    _ROLLUP_CTE
    + """
SELECT ts, open, high, low, close, volume, trades FROM (
    SELECT (day::timestamp AT TIME ZONE 'UTC') AS ts, open, high, low, close, volume, NULL::bigint AS trades
    FROM daily_bars
    WHERE symbol = %(symbol)s AND (day::timestamp AT TIME ZONE 'UTC') >= %(start)s
      AND (day::timestamp AT TIME ZONE 'UTC') + %(step)s <= %(end)s
    UNION ALL
    SELECT ts, open, high, low, close, volume, trades FROM rolled r
    WHERE ts >= %(start)s AND ts + %(step)s <= %(end)s
      AND NOT EXISTS (SELECT 1 FROM daily_bars d WHERE d.symbol = %(symbol)s
                      AND (d.day::timestamp AT TIME ZONE 'UTC') = r.ts)
) AS days
ORDER BY ts DESC LIMIT %(limit)s
"""
)


def _text(value: Decimal) -> str:
    return format(value, "f")


def bar_json(row: tuple[Any, ...]) -> dict[str, Any]:
    ts, open_, high, low, close, volume, trades = row
    return {
        "ts": int(ts.timestamp() * 1000),
        "open": _text(open_),
        "high": _text(high),
        "low": _text(low),
        "close": _text(close),
        "volume": int(volume),
        "trades": None if trades is None else int(trades),
    }


_GRID_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the origin the SQL's date_bin uses


def bucket_end(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The end of the bar holding `moment`, on the same grid as the SQL roll-ups."""
    return moment + step - (moment - _GRID_ORIGIN) % step


def window(
    interval: str, start: dt.datetime | None, end: dt.datetime | None, limit: int, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The time range to read first: `from` defaults to `limit` whole bars before `to` (or now).

    The lower bound is aligned to the bar grid, so a window of `limit` intervals holds exactly
    `limit` bars when the market never paused (the bar now forming included).
    """
    step = STEPS[interval]
    if end is not None:
        # Python's datetimes stop at year 1: an offset `to` near it would overflow below.
        end = min(max(end, _MIN_TIME), _MAX_TIME)
    upper = end or _MAX_TIME
    if start is not None:
        return max(start, _MIN_TIME), upper
    anchor = bucket_end(min(end - dt.timedelta(microseconds=1), now) if end else now, step)
    try:
        lower = anchor - step * limit
    except OverflowError:
        lower = _MIN_TIME
    return max(lower, _MIN_TIME), upper


_FIRST_BAR_SQL = """
SELECT least((SELECT min(bucket) FROM bars_1m WHERE symbol = %(symbol)s),
             (SELECT min(day)::timestamp AT TIME ZONE 'UTC' FROM daily_bars WHERE symbol = %(symbol)s))
"""


async def fetch_newest(
    conn: AsyncConnection,
    symbol: str,
    interval: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Bars in [from, to); without `from`, the newest `limit` bars before `to`, whatever the gaps.

    Nights, weekends and holidays leave gaps, so a window of `limit` intervals often holds fewer
    bars; it is then widened fourfold at a time down to the symbol's first bar, so the cost stays
    proportional to the range that really holds the answer.
    """
    lower, upper = window(interval, start, end, limit, now)
    items = await fetch_bars(conn, symbol, interval, lower, upper, limit)
    if start is not None or len(items) >= limit:
        return items
    cur = await conn.execute(_FIRST_BAR_SQL, {"symbol": symbol})
    row = await cur.fetchone()
    first: dt.datetime | None = row[0] if row else None
    step = STEPS[interval]
    top = bucket_end(min(upper, now) if end else now, step)
    span = max(top - lower, step)
    while first is not None and lower > first and len(items) < limit:
        span *= 4
        lower = max(first - step, top - span)
        items = await fetch_bars(conn, symbol, interval, lower, upper, limit)
    return items


async def fetch_bars(
    conn: AsyncConnection, symbol: str, interval: str, start: dt.datetime, end: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """The newest `limit` complete bars in [start, end), returned oldest first."""
    params = {"symbol": symbol, "start": start, "end": end, "limit": limit, "step": STEPS[interval]}
    sql = _MINUTE_SQL if interval == "1m" else _DAILY_SQL if interval == "1d" else _ROLLUP_SQL
    cur = await conn.execute(sql, params)
    rows = await cur.fetchall()
    return [bar_json(r) for r in reversed(rows)]
