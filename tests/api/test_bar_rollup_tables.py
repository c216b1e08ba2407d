"""/v1/bars from the roll-up tables, with PostgreSQL writing the JSON, serves byte for byte what
rolling bars_1m up per request and formatting each bar in Python served, for every interval:
prices with trailing zeros, tiny and huge prices, daily history beside minute days, windows
that cut bars, and pages found by widening the window past gaps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.bars import COARSER_FROM_1M_AGGREGATES
from tests.api.conftest import T0, ms
from tests.support.rollups import roll_up

STEPS = {"1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}
PRICES = ["100.50", "7.10000", "0.000000000001", "123456789012.5", "42", "99.999999999999", "1E+2"]

# The per-request roll-up the api ran before the roll-up tables, kept here as the reference.
_ROLLED = f"""
WITH rolled AS (
    SELECT date_bin(%(step)s::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS ts,
           {COARSER_FROM_1M_AGGREGATES}
    FROM bars_1m WHERE symbol = %(symbol)s GROUP BY 1
)
"""
REFERENCE = {
    "minutes": """
        SELECT bucket, open, high, low, close, volume, trades FROM bars_1m
        WHERE symbol = %(symbol)s AND bucket >= %(start)s AND bucket < %(end)s
        ORDER BY bucket DESC LIMIT %(limit)s""",
    "rolled": _ROLLED
    + """SELECT ts, open, high, low, close, volume, trades FROM rolled
        WHERE ts >= %(start)s AND ts + %(step)s::interval <= %(end)s ORDER BY ts DESC LIMIT %(limit)s""",
    "days": _ROLLED
    + """SELECT ts, open, high, low, close, volume, trades FROM (
            SELECT (day::timestamp AT TIME ZONE 'UTC') AS ts, open, high, low, close, volume, NULL::bigint AS trades
            FROM daily_bars WHERE symbol = %(symbol)s
            UNION ALL
            SELECT ts, open, high, low, close, volume, trades FROM rolled r
            WHERE NOT EXISTS (SELECT 1 FROM daily_bars d WHERE d.symbol = %(symbol)s
                              AND (d.day::timestamp AT TIME ZONE 'UTC') = r.ts)
        ) AS days
        WHERE ts >= %(start)s AND ts + %(step)s::interval <= %(end)s ORDER BY ts DESC LIMIT %(limit)s""",
}


def bar_json(row: tuple[Any, ...]) -> dict[str, Any]:
    ts, open_, high, low, close, volume, trades = row
    return {
        "ts": int(ts.timestamp() * 1000),
        "open": format(open_, "f"),
        "high": format(high, "f"),
        "low": format(low, "f"),
        "close": format(close, "f"),
        "volume": int(volume),
        "trades": None if trades is None else int(trades),
    }


async def reference(
    pool: AsyncConnectionPool, interval: str, start: dt.datetime, end: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    sql = REFERENCE["minutes" if interval == "1m" else "days" if interval == "1d" else "rolled"]
    params = {"symbol": "ODD", "step": STEPS[interval], "start": start, "end": end, "limit": limit}
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return [bar_json(r) for r in reversed(await cur.fetchall())]


@pytest.fixture
async def odd_bars(pg_pool: AsyncConnectionPool) -> None:
    """Three days of minutes (with a gap) in odd decimals; daily history for one of them and a day before."""
    rows = []
    for i in range(3 * 1440):
        if 1500 <= i < 2300:
            continue
        bucket = T0 + dt.timedelta(minutes=i)
        price = Decimal(PRICES[i % len(PRICES)])
        rows.append(
            (
                "ODD",
                bucket,
                price,
                price * 2,
                price / 2,
                Decimal(PRICES[(i + 3) % len(PRICES)]),
                i * 1000,
                1 + i % 9,
                bucket + dt.timedelta(seconds=i % 60),
                bucket + dt.timedelta(seconds=59),
            )
        )
    async with pg_pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
            " SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[],"
            " %s::numeric[], %s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[])",
            [list(col) for col in zip(*rows, strict=True)],
        )
        for day, close in (
            (T0.date() - dt.timedelta(days=2), "55.5000"),
            (T0.date() + dt.timedelta(days=1), "66.60"),
        ):
            await cur.execute(
                "INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source)"
                " VALUES ('ODD', %s, 50.25, 70, 40.125, %s, %s, 123456, 'csv')",
                (day, Decimal(close), Decimal(close)),
            )
        await roll_up(conn)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("interval", list(STEPS))
async def test_bars_equal_the_per_request_roll_up_byte_for_byte(
    api: TestClient, pg_pool: AsyncConnectionPool, odd_bars: None, interval: str
) -> None:
    start = T0 - dt.timedelta(days=3) + dt.timedelta(minutes=7)
    end = T0 + dt.timedelta(days=2, hours=13, minutes=3)
    for lo, hi, limit in ((start, end, 5000), (T0 + dt.timedelta(minutes=2), end, 37)):
        expected = await reference(pg_pool, interval, lo, hi, limit)
        assert expected, (interval, lo, hi)
        response = await api.get(
            f"/v1/bars/ODD?interval={interval}&from={_iso(lo)}&to={_iso(hi)}&limit={limit}"
        )
        body = await response.read()
        assert response.status == 200, body
        assert orjson.dumps(expected) in body
        parsed = orjson.loads(body)
        assert parsed["items"] == expected and parsed["interval"] == interval and parsed["symbol"] == "ODD"


@pytest.mark.parametrize("interval", list(STEPS))
async def test_newest_bars_before_to_widen_past_gaps_like_before(
    api: TestClient, pg_pool: AsyncConnectionPool, odd_bars: None, interval: str
) -> None:
    """Without `from`: the newest `limit` bars before `to`, found past the gap and the days before."""
    to = T0 + dt.timedelta(minutes=2300 + 180)
    limit = {"1m": 300, "5m": 100, "15m": 40, "1h": 25, "1d": 3}[interval]
    response = await api.get(f"/v1/bars/ODD?interval={interval}&to={_iso(to)}&limit={limit}")
    body = await response.read()
    assert response.status == 200, body
    items = orjson.loads(body)["items"]
    expected = await reference(pg_pool, interval, dt.datetime(1900, 1, 1, tzinfo=dt.UTC), to, limit)
    assert len(expected) == limit and orjson.dumps(expected) in body and items == expected
    assert items[0]["ts"] < ms(T0 + dt.timedelta(minutes=1500))  # the page reaches back past the gap
