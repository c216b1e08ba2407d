"""Bars of any interval, and indicators computed over their closes with the shared indicator code."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from aiohttp import web

from api.http.endpoints import Endpoint, Inputs, json_ok, page_size
from api.market import queries
from api.market.bar_rollup import STEPS, fetch_bars, fetch_newest
from api.market.models import BarSeries, BarsQuery, IndicatorSeries, IndicatorsQuery, SymbolPath
from api.settings import POOL, SETTINGS
from stocktrack_common import indicators
from stocktrack_common.http_errors import ApiError

# Recursive indicators (EMA, RSI, MACD) depend on every earlier value; this many lookbacks of
# earlier bars make the first returned value agree with a full-history computation to ~1e-6.
WARMUP_LOOKBACKS = 10
MAX_WARMUP_BARS = 2000


async def bars(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    query = inputs.query_as(BarsQuery)
    limit = page_size(query.limit, request.app[SETTINGS])
    async with request.app[POOL].connection() as conn:
        items = await fetch_newest(
            conn, symbol, query.interval, query.from_, query.to, limit, dt.datetime.now(dt.UTC)
        )
        if not items and not await queries.symbol_known(conn, symbol):
            raise ApiError(404, f"unknown symbol {symbol}")
    return json_ok({"symbol": symbol, "interval": query.interval, "items": items})


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 8)


def indicator_points(
    closes: list[float], times: list[int], skip: int, q: IndicatorsQuery
) -> list[dict[str, Any]]:
    """Every indicator over all closes (warm-up included), reported from index `skip` on."""
    values = np.asarray(closes, dtype=np.float64)
    sma = indicators.sma(values, q.sma_period)
    ema = indicators.ema(values, q.ema_period)
    rsi = indicators.rsi(values, q.rsi_period)
    macd, signal, hist = indicators.macd(values, q.macd_fast, q.macd_slow, q.macd_signal)
    return [
        {
            "ts": times[i],
            "close": float(values[i]),
            "sma": _clean(sma[i]),
            "ema": _clean(ema[i]),
            "rsi": _clean(rsi[i]),
            "macd": _clean(macd[i]),
            "macd_signal": _clean(signal[i]),
            "macd_hist": _clean(hist[i]),
        }
        for i in range(skip, len(closes))
    ]


async def indicator_series(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    q = inputs.query_as(IndicatorsQuery)
    limit = page_size(q.limit, request.app[SETTINGS])
    lookback = max(q.sma_period, q.ema_period, q.rsi_period + 1, q.macd_slow + q.macd_signal)
    warmup = min(MAX_WARMUP_BARS, lookback * WARMUP_LOOKBACKS)
    async with request.app[POOL].connection() as conn:
        shown = await fetch_newest(conn, symbol, q.interval, q.from_, q.to, limit, dt.datetime.now(dt.UTC))
        if not shown and not await queries.symbol_known(conn, symbol):
            raise ApiError(404, f"unknown symbol {symbol}")
        earlier: list[dict[str, Any]] = []
        if shown:
            first = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=shown[0]["ts"])
            # Generous: nights, weekends and holidays leave gaps between bars.
            warm_start = max(
                first - STEPS[q.interval] * warmup * 4 - dt.timedelta(days=4),
                dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
            )
            earlier = await fetch_bars(conn, symbol, q.interval, warm_start, first, warmup)
    series = earlier + shown
    points = indicator_points([float(b["close"]) for b in series], [b["ts"] for b in series], len(earlier), q)
    params = {
        "sma_period": q.sma_period,
        "ema_period": q.ema_period,
        "rsi_period": q.rsi_period,
        "macd_fast": q.macd_fast,
        "macd_slow": q.macd_slow,
        "macd_signal": q.macd_signal,
    }
    return json_ok({"symbol": symbol, "interval": q.interval, "params": params, "items": points})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/bars/{symbol}",
        bars,
        "OHLCV bars; coarser intervals rolled up from 1-minute bars",
        "history",
        path_model=SymbolPath,
        query=BarsQuery,
        response=BarSeries,
        description="The newest `limit` bars starting in [from, to), oldest first. `from` defaults to "
        "`limit` intervals before `to` (or now); the newest bar may still be forming.",
    ),
    Endpoint(
        "GET",
        "/v1/indicators/{symbol}",
        indicator_series,
        "SMA, EMA, RSI and MACD over bar closes",
        "history",
        path_model=SymbolPath,
        query=IndicatorsQuery,
        response=IndicatorSeries,
        description="Computed over the same bars as /v1/bars, warmed up on earlier bars; null where an "
        "indicator is not yet defined.",
    ),
)
