"""Recommendations: the newest per symbol (primary: must be fresh), and a filtered,
cursor-paginated list (history: READ_POOL, the replica when DATABASE_READ_URL is set)."""

from __future__ import annotations

from aiohttp import web

from api.http.cursors import query_scope
from api.http.endpoints import Endpoint, Inputs, json_ok, page_size
from api.http.params import cursor_text, cursor_time
from api.market import queries
from api.market.models import SignalOut, SignalPage, SignalsQuery, SymbolPath
from api.settings import CURSORS, POOL, READ_POOL, SETTINGS
from stocktrack_common.http_errors import ApiError


async def latest_signal(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    async with request.app[POOL].connection() as conn:
        row = await queries.latest_signal(conn, symbol)
    if row is None:
        raise ApiError(404, f"no signals for symbol {symbol}")
    return json_ok(row)


async def list_signals(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    query = inputs.query_as(SignalsQuery)
    limit = page_size(query.limit, request.app[SETTINGS])
    scope = query_scope("signals", None, query)
    after = None
    if query.cursor:
        c = request.app[CURSORS].decode(query.cursor, {"ts", "symbol", "source"}, scope)
        after = (cursor_time(c["ts"]), cursor_text(c["symbol"]), cursor_text(c["source"]))
    symbol = query.symbol.upper() if query.symbol else None
    async with request.app[READ_POOL].connection() as conn:
        rows = await queries.signals_page(conn, symbol, query.action, query.from_, query.to, limit, after)
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = request.app[CURSORS].encode(
            {"ts": last["ts"] * 1000, "symbol": last["symbol"], "source": last["source"]}, scope
        )
    return json_ok({"items": rows, "next_cursor": next_cursor})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/signals/{symbol}/latest",
        latest_signal,
        "Newest signal of one symbol",
        "signals",
        path_model=SymbolPath,
        response=SignalOut,
    ),
    Endpoint(
        "GET",
        "/v1/signals",
        list_signals,
        "Signals, oldest first, filtered and cursor paginated",
        "signals",
        query=SignalsQuery,
        response=SignalPage,
        not_found=False,
    ),
)
