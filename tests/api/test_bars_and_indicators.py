"""Bars rolled up in SQL from 1-minute bars (and daily history), and indicators over their closes."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import numpy as np
import talib
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from psycopg_pool import AsyncConnectionPool

from api.market.bars import BAR_READS
from api.settings import READ_POOL
from stocktrack_common import indicators
from tests.api.conftest import T0, assert_error, get_json, insert_bars, ms
from tests.support.waiting import wait_until_async

MINUTE = dt.timedelta(minutes=1)


async def test_one_minute_and_rolled_up_bars(api: TestClient, pg_pool: AsyncConnectionPool) -> None:  # type: ignore[type-arg]
    closes = [100 + (i * 7919 % 23) / 4 for i in range(120)]
    rows = await insert_bars(pg_pool, "AAPL", T0, closes)
    window = {"from": T0.isoformat(), "to": (T0 + 120 * MINUTE).isoformat()}

    status, body = await get_json(api, "/v1/bars/AAPL", params={**window, "interval": "1m", "limit": "5000"})
    assert status == 200 and len(body["items"]) == 120
    assert body["items"][0] == {
        "ts": ms(T0),
        "open": "99.5",
        "high": "101.0",
        "low": "99.0",
        "close": "100.0",
        "volume": 100,
        "trades": 1,
    }

    status, body = await get_json(api, "/v1/bars/AAPL", params={**window, "interval": "15m"})
    assert status == 200 and len(body["items"]) == 8
    for k, bar in enumerate(body["items"]):
        chunk = rows[k * 15 : (k + 1) * 15]
        assert bar["ts"] == ms(T0 + 15 * k * MINUTE)
        assert Decimal(bar["open"]) == chunk[0]["open"] and Decimal(bar["close"]) == chunk[-1]["close"]
        assert Decimal(bar["high"]) == max(r["high"] for r in chunk)
        assert Decimal(bar["low"]) == min(r["low"] for r in chunk)
        assert bar["volume"] == sum(r["volume"] for r in chunk) and bar["trades"] == sum(
            r["trades"] for r in chunk
        )

    # A window starting mid-bar returns only complete bars; limit keeps the newest.
    status, body = await get_json(
        api,
        "/v1/bars/AAPL",
        params={"interval": "1h", "from": str(ms(T0 + 10 * MINUTE)), "to": str(ms(T0 + 200 * MINUTE))},
    )
    assert status == 200 and [b["ts"] for b in body["items"]] == [ms(T0 + 30 * MINUTE), ms(T0 + 90 * MINUTE)]
    status, body = await get_json(api, "/v1/bars/AAPL", params={**window, "interval": "5m", "limit": "3"})
    assert [b["ts"] for b in body["items"]] == [ms(T0 + m * MINUTE) for m in (105, 110, 115)]


async def test_daily_bars_combine_daily_history_and_minute_bars(
    api: TestClient,
    pg_pool: AsyncConnectionPool,  # type: ignore[type-arg]
) -> None:
    async with pg_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source) VALUES"
            " ('AAPL', '2024-04-29', 10, 12, 9, 11, 11, 1000, 'csv'), ('AAPL', '2024-04-30', 11, 13, 10, 12, 12, 900, 'csv')"
        )
    await insert_bars(pg_pool, "AAPL", T0, [20.0, 21.0, 22.0])
    status, body = await get_json(api, "/v1/bars/AAPL?interval=1d&from=2024-04-29&to=2024-05-02")
    assert status == 200
    assert [(b["ts"], b["open"], b["close"], b["trades"]) for b in body["items"]] == [
        (ms(dt.datetime(2024, 4, 29, tzinfo=dt.UTC)), "10", "11", None),
        (ms(dt.datetime(2024, 4, 30, tzinfo=dt.UTC)), "11", "12", None),
        (ms(dt.datetime(2024, 5, 1, tzinfo=dt.UTC)), "19.5", "22.0", 6),
    ]


async def test_bar_errors(api: TestClient, pg_pool: AsyncConnectionPool) -> None:  # type: ignore[type-arg]
    await insert_bars(pg_pool, "AAPL", T0, [1.0])
    assert_error(*await get_json(api, "/v1/bars/NOPE"), 404, "not_found")
    assert_error(*await get_json(api, "/v1/bars/AAPL?interval=2m"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/bars/AAPL?limit=-1"), 422, "validation_error")
    status, body = await get_json(api, "/v1/bars/AAPL?interval=1m&from=2020-01-01&to=2020-01-02")
    assert status == 200 and body["items"] == []
    # A day past its month's end is outside the documented pattern; February 29 only in leap years.
    for day in ("2023-11-31", "2023-02-29", "1900-02-29"):
        assert_error(*await get_json(api, f"/v1/bars/AAPL?to={day}"), 422, "validation_error")
    for day in ("2024-02-29", "2000-02-29"):
        assert (await get_json(api, f"/v1/bars/AAPL?to={day}"))[0] == 200
    # The first instants Python can hold, with an offset east of UTC: an empty page, not an overflow.
    for path in ("/v1/bars/AAPL", "/v1/indicators/AAPL"):
        status, body = await get_json(api, path, params={"to": "0001-01-01T00:00+05:00"})
        assert status == 200 and body["items"] == [], body


async def test_indicators_match_the_shared_indicator_code(
    api: TestClient,
    pg_pool: AsyncConnectionPool,  # type: ignore[type-arg]
) -> None:
    closes = [100 + 5 * np.sin(i / 7) + (i % 5) * 0.3 for i in range(400)]
    closes = [round(c, 4) for c in closes]
    await insert_bars(pg_pool, "AAPL", T0, closes)
    start = T0 + 300 * MINUTE
    status, body = await get_json(
        api,
        "/v1/indicators/AAPL",
        params={
            "interval": "1m",
            "from": start.isoformat(),
            "to": (T0 + 400 * MINUTE).isoformat(),
            "rsi_period": "10",
        },
    )
    assert status == 200 and len(body["items"]) == 100 and body["params"]["rsi_period"] == 10
    full = np.asarray(closes)
    expected_sma = indicators.sma(full, 20)[300:]
    expected_rsi = indicators.rsi(full, 10)[300:]
    expected_macd = indicators.macd(full)[0][300:]
    got = body["items"]
    assert got[0]["ts"] == ms(start) and got[0]["close"] == closes[300]
    assert np.allclose([p["sma"] for p in got], expected_sma, atol=1e-6)
    assert np.allclose([p["rsi"] for p in got], expected_rsi, atol=1e-4)
    assert np.allclose([p["macd"] for p in got], expected_macd, atol=1e-4)

    # Too little history: undefined values are null, not NaN.
    status, body = await get_json(
        api,
        "/v1/indicators/AAPL",
        params={"interval": "1h", "from": T0.isoformat(), "to": (T0 + 400 * MINUTE).isoformat()},
    )
    assert status == 200 and all(p["sma"] is None and p["macd"] is None for p in body["items"])


async def test_indicator_errors(api: TestClient) -> None:  # type: ignore[type-arg]
    assert_error(*await get_json(api, "/v1/indicators/NOPE"), 404, "not_found")
    assert_error(*await get_json(api, "/v1/indicators/AAPL?sma_period=1"), 422, "validation_error")


async def test_macd_periods_in_either_order_are_one_request(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    """Every pair the schema allows is answered: swapped periods mean what TA-Lib makes of them."""
    closes = [round(100 + 5 * np.sin(i / 7) + (i % 5) * 0.3, 4) for i in range(200)]
    await insert_bars(pg_pool, "AAPL", T0, closes)
    window = {"interval": "1m", "from": T0.isoformat(), "to": (T0 + 200 * MINUTE).isoformat()}
    ordered = await get_json(
        api, "/v1/indicators/AAPL", params={**window, "macd_fast": "26", "macd_slow": "30"}
    )
    swapped = await get_json(
        api, "/v1/indicators/AAPL", params={**window, "macd_fast": "30", "macd_slow": "26"}
    )
    assert ordered == swapped and ordered[0] == 200
    assert (ordered[1]["params"]["macd_fast"], ordered[1]["params"]["macd_slow"]) == (26, 30)
    expected = talib.MACD(np.asarray(closes), 30, 26, 9)[0]
    got = np.array([np.nan if p["macd"] is None else p["macd"] for p in ordered[1]["items"]])
    assert np.allclose(got, expected, equal_nan=True, rtol=1e-9, atol=1e-12)
    status, body = await get_json(
        api, "/v1/indicators/AAPL", params={**window, "macd_fast": "26", "macd_slow": "26"}
    )
    assert status == 200
    assert {p["macd"] for p in body["items"] if p["macd"] is not None} == {0.0}


async def test_limit_n_returns_n_bars_at_every_interval_without_from(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    """Up to now, with the bar now forming; and after a gap (a weekend) the window widens."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    recent_start = now - 3 * dt.timedelta(days=1)
    await insert_bars(pg_pool, "MSFT", recent_start, [100 + i % 7 for i in range(3 * 1440 + 1)])
    # An older stretch after a four-day gap, reached only by widening the window.
    old_start = recent_start - dt.timedelta(days=9)
    await insert_bars(pg_pool, "MSFT", old_start, [90 + i % 5 for i in range(5 * 1440)])
    for interval, limits in {
        "1m": (1, 10, 500),
        "5m": (1, 10, 500),
        "15m": (1, 10, 200),
        "1h": (1, 10, 100),
        "1d": (1, 5, 8),
    }.items():
        for limit in limits:
            for what in ("bars", "indicators"):
                status, body = await get_json(
                    api, f"/v1/{what}/MSFT", params={"interval": interval, "limit": str(limit)}
                )
                assert status == 200, body
                got = [item["ts"] for item in body["items"]]
                assert len(got) == limit, f"{what} {interval} limit={limit}: {len(got)} items"
                assert got == sorted(set(got))
            if interval == "1m":
                assert got[-1] == ms(now), "the newest minute bar is the one now forming"


def shared_reads() -> float:
    return REGISTRY.get_sample_value("stocktrack_api_shared_reads_total", {"endpoint": "bars"}) or 0.0


async def test_identical_bar_requests_in_flight_share_one_read(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    """A popular chart: viewers asking for the same page at once cost one query, and get its answer."""
    await insert_bars(pg_pool, "AAPL", T0, [100 + i / 4 for i in range(90)])
    page = {"from": T0.isoformat(), "to": (T0 + 90 * MINUTE).isoformat(), "interval": "1m", "limit": "60"}
    shared_before = shared_reads()
    read_pool = api.server.app[READ_POOL]
    # Every read connection held: the first request's read waits for one, the rest arrive meanwhile.
    held = [await read_pool.getconn() for _ in range(read_pool.max_size)]
    same = [asyncio.ensure_future(get_json(api, "/v1/bars/AAPL", params=page)) for _ in range(6)]
    other = asyncio.ensure_future(get_json(api, "/v1/bars/AAPL", params={**page, "limit": "30"}))
    await wait_until_async(lambda: len(api.server.app[BAR_READS].running) == 2, 5, "both reads to start")
    for conn in held:
        await read_pool.putconn(conn)
    answers = await asyncio.gather(*same)
    assert answers == [answers[0]] * 6 and answers[0][0] == 200 and len(answers[0][1]["items"]) == 60
    status, body = await other
    assert status == 200 and len(body["items"]) == 30
    assert shared_reads() - shared_before == 5
    # Done reads are not answers: the next request reads again, and sees a bar stored since.
    await insert_bars(pg_pool, "AAPL", T0 + 90 * MINUTE, [200.0])
    page["to"] = (T0 + 91 * MINUTE).isoformat()
    status, body = await get_json(api, "/v1/bars/AAPL", params=page)
    assert body["items"][-1]["close"] == "200.0"
