"""Bars of any interval, and indicators computed over their closes with the shared indicator code.

Both are history, read through READ_POOL (the replica when DATABASE_READ_URL is set).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from aiohttp import web
from prometheus_client import Counter
from psycopg import AsyncConnection

from api.http.cursors import CursorSigner, query_scope
from api.http.endpoints import Endpoint, Inputs, json_ok, page_size
from api.http.params import cursor_time
from api.market import queries
from api.market.bar_rollup import Closes, PageT, fetch_newest, fetch_newest_closes
from api.market.models import (
    DEFAULT_INTERVAL,
    BarSeries,
    BarsQuery,
    IndicatorSeries,
    IndicatorsQuery,
    SymbolPath,
)
from api.settings import CURSORS, READ_POOL, SETTINGS
from stocktrack_common import indicators
from stocktrack_common.http_errors import ApiError
from stocktrack_common.shared_calls import SharedCalls

# Recursive indicators (EMA, RSI, MACD) depend on every earlier value, through a weight of
# (1 - alpha)^k on the value k bars back. Once that weight is below double precision's epsilon
# the earlier bars cannot change a single bit, so this many bars of warm-up (or the symbol's
# whole history, when shorter) give exactly the full-history values.
_EPSILON_LOG = math.log(2.0**-53)
# A bar page's cursor is the `to` of the next (older) page, so it stands in for `to`.
CURSOR_REPLACES = frozenset({"to"})
# Pages being read now, by query: a popular chart's viewers asking at once cost one query, not
# one each (a day of minute bars is ~2.4 ms of PostgreSQL). A request is answered by a read
# that was already running when it arrived, never by a finished one.
BarReadKey = tuple[str, int, str]
BAR_READS: web.AppKey[SharedCalls[BarReadKey, bytes]] = web.AppKey("bar_reads", SharedCalls)
SHARED_READS = Counter(
    "stocktrack_api_shared_reads_total",
    "Requests answered by an identical read already in flight instead of a query of their own",
    ["endpoint"],
)


def _fade_bars(alpha: float) -> int:
    """Bars after which a seed's weight (1 - alpha)^k drops below double precision's epsilon."""
    return math.ceil(_EPSILON_LOG / math.log1p(-alpha))


def warmup_bars(q: IndicatorsQuery) -> int:
    """Earlier bars needed for every indicator of `q` to equal its full-history value."""
    return max(
        q.sma_period,
        q.ema_period + _fade_bars(2.0 / (q.ema_period + 1)),
        q.rsi_period + 1 + _fade_bars(1.0 / q.rsi_period),
        q.macd_slow + q.macd_signal + _fade_bars(2.0 / (max(q.macd_slow, q.macd_signal) + 1)),
    )


async def _newest(
    conn: AsyncConnection,
    symbol: str,
    q: BarsQuery,
    limit: int,
    cursors: CursorSigner,
    scope: bytes,
    fetch: Callable[..., Awaitable[PageT]],
) -> tuple[str, PageT]:
    """(interval, bars) of this page: a cursor overrides `to`; without an interval, a symbol with
    no minute bars (daily history only) gets its daily bars instead of an empty page."""
    end = q.to
    if q.cursor is not None:
        end = cursor_time(cursors.decode(q.cursor, {"before"}, scope)["before"])
    interval = q.interval or DEFAULT_INTERVAL
    now = dt.datetime.now(dt.UTC)
    page = await fetch(conn, symbol, interval, q.from_, end, limit, now)
    if not page and q.interval is None:
        interval = "1d"
        page = await fetch(conn, symbol, interval, q.from_, end, limit, now)
    return interval, page


def _next_cursor(
    first_ms: int | None, count: int, limit: int, cursors: CursorSigner, scope: bytes
) -> str | None:
    """The next (older) page ends where this one starts; none once a page comes back short."""
    if first_ms is None or count < limit:
        return None
    return cursors.encode({"before": first_ms * 1000}, scope)


async def bars(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    """A page of bars; identical requests in flight at the same time share one read (BAR_READS)."""
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    query = inputs.query_as(BarsQuery)
    limit = page_size(query.limit, request.app[SETTINGS])
    cursors, scope = request.app[CURSORS], query_scope("bars", symbol, query, CURSOR_REPLACES)

    async def read() -> bytes:
        async with request.app[READ_POOL].connection() as conn:
            interval, page = await _newest(conn, symbol, query, limit, cursors, scope, fetch_newest)
            if not page and not await queries.symbol_known(conn, symbol):
                raise ApiError(404, f"unknown symbol {symbol}")
        return orjson.dumps(
            {
                "symbol": symbol,
                "interval": interval,
                # The bars as PostgreSQL wrote them (bar_rollup.py): no per-bar object in Python.
                "items": orjson.Fragment(b"[" + page.items_json + b"]"),
                "next_cursor": _next_cursor(page.first_ms, page.count, limit, cursors, scope),
            }
        )

    # Every input of the page: the query as validated, and the page size it resolved to.
    key = (symbol, limit, query.model_dump_json())
    body, joined = await request.app[BAR_READS].run(key, read)
    if joined:
        SHARED_READS.labels("bars").inc()
    return web.Response(body=body, content_type="application/json")


def _clean(value: float) -> float | None:
    """Full double precision (JSON numbers round-trip exactly); NaN (not yet defined) is null."""
    return None if math.isnan(value) else float(value)


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
    cursors, scope = request.app[CURSORS], query_scope("indicators", symbol, q, CURSOR_REPLACES)
    async with request.app[READ_POOL].connection() as conn:
        interval, shown = await _newest(conn, symbol, q, limit, cursors, scope, fetch_newest_closes)
        if not shown and not await queries.symbol_known(conn, symbol):
            raise ApiError(404, f"unknown symbol {symbol}")
        earlier = Closes([], [])
        if shown:
            first = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=shown.times[0])
            # The newest warm-up bars before the page, however far back gaps push them.
            earlier = await fetch_newest_closes(
                conn, symbol, interval, None, first, warmup_bars(q), dt.datetime.now(dt.UTC)
            )
    points = indicator_points(earlier.closes + shown.closes, earlier.times + shown.times, len(earlier), q)
    params = {
        "sma_period": q.sma_period,
        "ema_period": q.ema_period,
        "rsi_period": q.rsi_period,
        "macd_fast": q.macd_fast,
        "macd_slow": q.macd_slow,
        "macd_signal": q.macd_signal,
    }
    return json_ok(
        {
            "symbol": symbol,
            "interval": interval,
            "params": params,
            "items": points,
            "next_cursor": _next_cursor(shown.times[0] if shown else None, len(shown), limit, cursors, scope),
        }
    )


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
