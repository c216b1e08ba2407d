"""OHLCV bars of any interval, read from `bars_1m` and its maintained roll-ups (and, for days,
`daily_bars`), with the page's JSON built by PostgreSQL.

The coarser tables (`bars_5m`, `bars_15m`, `bars_1h`, `bars_1d`, migration 0008) hold exactly what
rolling the 1-minute bars up would give (the aggregates of stocktrack_common.bars, the one bar
model) as of at most about ROLLUP_INTERVAL_MS ago (the writers' roller keeps them), so a request
reads one row per bar instead of aggregating minutes. Only complete bars
are returned: bars starting before `from`, or ending after `to`, are left out. Daily bars come
from the daily history where it has the day (it holds backfilled days the minute table never
saw) and from the minute bars' daily roll-up for the other days.

Why the JSON is built in SQL: turning a day of minute rows into Decimals, datetimes and dicts
cost the api more CPU than everything else in the request. PostgreSQL writes each bar as the
exact text the api always sent (numeric's text output is the stored decimal, `format(d, "f")`
of the same value; times are epoch milliseconds), and the api only wraps the array.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg import AsyncConnection

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

_EPOCH_MS = "floor(date_part('epoch', {ts}) * 1000)::bigint"

# The newest `limit` complete bars in [start, end) of one interval, newest first; `last` is the
# start of the last bar that ends by `end` (end - step), so the range stays an index range.
_MINUTE_ROWS = """
SELECT bucket AS ts, open, high, low, close, volume, trades::bigint AS trades FROM bars_1m
WHERE symbol = %(symbol)s AND bucket >= %(start)s AND bucket < %(end)s
ORDER BY bucket DESC LIMIT %(limit)s
"""

_ROLLUP_ROWS = """
SELECT bucket AS ts, open, high, low, close, volume, trades FROM {table}
WHERE symbol = %(symbol)s AND bucket >= %(start)s AND bucket <= %(last)s
ORDER BY bucket DESC LIMIT %(limit)s
"""

_DAILY_ROWS = """
SELECT ts, open, high, low, close, volume, trades FROM (
    SELECT (day::timestamp AT TIME ZONE 'UTC') AS ts, open, high, low, close, volume, NULL::bigint AS trades
    FROM daily_bars
    WHERE symbol = %(symbol)s AND (day::timestamp AT TIME ZONE 'UTC') >= %(start)s
      AND (day::timestamp AT TIME ZONE 'UTC') <= %(last)s
    UNION ALL
    SELECT bucket, open, high, low, close, volume, trades FROM bars_1d r
    WHERE symbol = %(symbol)s AND bucket >= %(start)s AND bucket <= %(last)s
      AND NOT EXISTS (SELECT 1 FROM daily_bars d WHERE d.symbol = %(symbol)s
                      AND (d.day::timestamp AT TIME ZONE 'UTC') = r.bucket)
) AS days
ORDER BY ts DESC LIMIT %(limit)s
"""

ROWS_SQL: dict[str, str] = {
    "1m": _MINUTE_ROWS,
    "5m": _ROLLUP_ROWS.format(table="bars_5m"),
    "15m": _ROLLUP_ROWS.format(table="bars_15m"),
    "1h": _ROLLUP_ROWS.format(table="bars_1h"),
    "1d": _DAILY_ROWS,
}

# One bar as the api's JSON object, byte for byte what orjson wrote for the same values.
_BAR_JSON = (
    """'{"ts":' || """
    + _EPOCH_MS.format(ts="ts")
    + """ || ',"open":"' || open::text || '","high":"' || high::text || '","low":"' || low::text
    || '","close":"' || close::text || '","volume":' || volume::text
    || ',"trades":' || coalesce(trades::text, 'null') || '}'"""
)

_PAGE_SELECT = (
    "SELECT count(*), "
    + _EPOCH_MS.format(ts="min(ts)")
    + ", coalesce(string_agg("
    + _BAR_JSON
    + ", ',' ORDER BY ts), '') FROM ("
)
_CLOSES_SELECT = "SELECT " + _EPOCH_MS.format(ts="ts") + ", close::text FROM ("

PAGE_SQL = {interval: _PAGE_SELECT + rows + ") AS page" for interval, rows in ROWS_SQL.items()}
CLOSES_SQL = {
    interval: _CLOSES_SELECT + rows + ") AS page ORDER BY ts" for interval, rows in ROWS_SQL.items()
}


@dataclass(frozen=True)
class BarPage:
    """A page of bars, oldest first: how many, the first one's time, and the JSON array's items."""

    count: int
    first_ms: int | None
    items_json: bytes

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class Closes:
    """Closes of a page of bars, oldest first (what indicators are computed over)."""

    times: list[int]
    closes: list[float]

    def __len__(self) -> int:
        return len(self.times)


_GRID_ORIGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the origin the roll-up tables' date_bin uses


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

PageT = TypeVar("PageT", BarPage, Closes)
_Reader = Callable[[AsyncConnection, str, dict[str, Any]], Awaitable[PageT]]


async def _read_page(conn: AsyncConnection, interval: str, params: dict[str, Any]) -> BarPage:
    cur = await conn.execute(PAGE_SQL[interval], params)
    row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns its one row
    count, first_ms, items = row
    return BarPage(int(count), first_ms, items.encode())


async def _read_closes(conn: AsyncConnection, interval: str, params: dict[str, Any]) -> Closes:
    cur = await conn.execute(CLOSES_SQL[interval], params)
    rows = await cur.fetchall()
    return Closes([int(ts) for ts, _ in rows], [float(close) for _, close in rows])


async def _newest(
    read: _Reader[PageT],
    conn: AsyncConnection,
    symbol: str,
    interval: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    now: dt.datetime,
) -> PageT:
    """Bars in [from, to); without `from`, the newest `limit` bars before `to`, whatever the gaps.

    Nights, weekends and holidays leave gaps, so a window of `limit` intervals often holds fewer
    bars; it is then widened fourfold at a time down to the symbol's first bar, so the cost stays
    proportional to the range that really holds the answer.
    """
    lower, upper = window(interval, start, end, limit, now)
    step = STEPS[interval]

    async def fetch(lo: dt.datetime) -> PageT:
        params = {"symbol": symbol, "start": lo, "end": upper, "last": upper - step, "limit": limit}
        return await read(conn, interval, params)

    page = await fetch(lower)
    if start is not None or len(page) >= limit:
        return page
    cur = await conn.execute(_FIRST_BAR_SQL, {"symbol": symbol})
    row = await cur.fetchone()
    first: dt.datetime | None = row[0] if row else None
    top = bucket_end(min(upper, now) if end else now, step)
    span = max(top - lower, step)
    while first is not None and lower > first and len(page) < limit:
        span *= 4
        lower = max(first - step, top - span)
        page = await fetch(lower)
    return page


async def fetch_newest(
    conn: AsyncConnection,
    symbol: str,
    interval: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    now: dt.datetime,
) -> BarPage:
    """The page of bars `/v1/bars` serves (see `_newest` for the range)."""
    return await _newest(_read_page, conn, symbol, interval, start, end, limit, now)


async def fetch_newest_closes(
    conn: AsyncConnection,
    symbol: str,
    interval: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    now: dt.datetime,
) -> Closes:
    """The closes of the same bars, for `/v1/indicators`."""
    return await _newest(_read_closes, conn, symbol, interval, start, end, limit, now)
