"""Indicators through the API equal TA-Lib over the whole history, to 1e-9 relative, for every
period the API allows; pages follow a cursor; a symbol with daily history only gets daily bars."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import talib
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from api.market.bars import warmup_bars
from api.market.models import IndicatorsQuery
from tests.api.conftest import T0, get_json, insert_bars, ms

MINUTE = dt.timedelta(minutes=1)
HISTORY = 3000
PAGE = 60
RTOL = 1e-9


def assert_close(got: list[Any], expected: np.ndarray, closes: np.ndarray, what: str) -> None:
    """Within 1e-9 of the value; a value within a thousandth of the price of zero (a MACD crossing)
    has no meaningful relative error, so there the bound is 1e-12 of the price."""
    values = np.array([np.nan if v is None else v for v in got], dtype=float)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected), err_msg=what)
    defined = ~np.isnan(expected)
    error = np.abs(values[defined] - expected[defined])
    scale = np.maximum(np.abs(expected[defined]), 1e-3 * closes[defined])
    assert np.all(error <= RTOL * scale), (what, float(np.max(error / scale)))


def periods(p: int) -> dict[str, int]:
    slow = min(p + 1, 500)
    return {
        "sma_period": p,
        "ema_period": p,
        "rsi_period": p,
        "macd_fast": max(2, slow // 2),
        "macd_slow": slow,
        "macd_signal": p,
    }


async def test_every_allowed_period_equals_talib_over_the_full_history(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    rng = np.random.default_rng(7)
    closes = [round(float(c), 4) for c in 100 * np.exp(np.cumsum(rng.normal(0, 0.002, HISTORY)))]
    await insert_bars(pg_pool, "EXACT", T0, closes)
    full = np.asarray(closes)
    end = T0 + HISTORY * MINUTE
    for p in range(2, 501):
        params = periods(p)
        status, body = await get_json(
            api,
            "/v1/indicators/EXACT",
            params={
                "interval": "1m",
                "to": end.isoformat(),
                "limit": str(PAGE),
                **{k: str(v) for k, v in params.items()},
            },
        )
        assert status == 200, body
        items = body["items"]
        assert [i["ts"] for i in items] == [ms(T0 + k * MINUTE) for k in range(HISTORY - PAGE, HISTORY)]
        tail = slice(HISTORY - PAGE, HISTORY)
        macd, signal, hist = talib.MACD(full, params["macd_fast"], params["macd_slow"], params["macd_signal"])
        for name, reference in (
            ("sma", talib.SMA(full, p)),
            ("ema", talib.EMA(full, p)),
            ("rsi", talib.RSI(full, p)),
            ("macd", macd),
            ("macd_signal", signal),
            ("macd_hist", hist),
        ):
            assert_close([i[name] for i in items], reference[tail], full[tail], f"{name} period {p}")


def test_the_warm_up_covers_the_longest_memory() -> None:
    defaults = warmup_bars(IndicatorsQuery())
    longest = warmup_bars(IndicatorsQuery(rsi_period=500))
    # RSI(500)'s seed fades below 2^-53 after about 18,400 bars; RSI(14) after about 500.
    assert 400 < defaults < 700 and 18_000 < longest < 19_000


async def test_cursor_pages_back_through_history(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    closes = [100 + (i % 17) * 0.25 for i in range(250)]
    await insert_bars(pg_pool, "PAGE", T0, closes)
    end = (T0 + 250 * MINUTE).isoformat()
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params = {"interval": "1m", "to": end, "limit": "100", **({"cursor": cursor} if cursor else {})}
        status, body = await get_json(api, "/v1/bars/PAGE", params=params)
        assert status == 200
        seen = [b["ts"] for b in body["items"]] + seen
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [ms(T0 + k * MINUTE) for k in range(250)]
    status, body = await get_json(
        api, "/v1/indicators/PAGE", params={"interval": "1m", "to": end, "limit": "100"}
    )
    assert status == 200 and body["next_cursor"] is not None
    status, older = await get_json(
        api, "/v1/indicators/PAGE", params={"interval": "1m", "limit": "100", "cursor": body["next_cursor"]}
    )
    assert [i["ts"] for i in older["items"]] == [ms(T0 + k * MINUTE) for k in range(50, 150)]


async def test_default_window_serves_a_symbol_with_daily_history_only(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source)"
            " SELECT 'OLD', d::date, 10, 11, 9, 10 + extract(doy FROM d) / 100, NULL, 1000, 'csv'"
            " FROM generate_series('1998-01-01'::date, '1999-12-31'::date, interval '1 day') AS d"
        )
    for path in ("/v1/bars/OLD", "/v1/indicators/OLD"):
        status, body = await get_json(api, path, params={"limit": "30"})
        assert status == 200 and body["interval"] == "1d" and len(body["items"]) == 30, path
        assert body["items"][-1]["ts"] == ms(dt.datetime(1999, 12, 31, tzinfo=dt.UTC))
    status, body = await get_json(api, "/v1/indicators/OLD", params={"limit": "30"})
    assert all(i["sma"] is not None and i["rsi"] is not None for i in body["items"])
