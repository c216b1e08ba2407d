"""Latest quotes (Redis first, PostgreSQL when the cache has nothing) and raw tick history.

A latest quote must be fresh, so its fallback reads the primary; tick history may lag by the
replica's replay delay and reads READ_POOL (DATABASE_READ_URL).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from api.access.auth import read_hash_field
from api.http.cursors import query_scope
from api.http.endpoints import Endpoint, Inputs, json_ok, page_size
from api.http.params import cursor_text, cursor_time
from api.market import queries
from api.market.models import LatestQuotesQuery, Quote, QuoteMap, SymbolPath, TickPage, TicksQuery
from api.settings import CURSORS, POOL, PREFIX, READ_POOL, REDIS, SETTINGS
from stocktrack_common.http_errors import ApiError
from stocktrack_common.stream_names import latest_quotes_key


def _latest_quote_field(request: web.Request) -> tuple[str, str]:
    return latest_quotes_key(request.app[PREFIX]), request.match_info["symbol"].upper()


async def latest_quote(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    # The cached quote is already the response's JSON: served as bytes, never parsed.
    cached = await read_hash_field(request, latest_quotes_key(request.app[PREFIX]), symbol)
    if cached:
        return web.Response(body=cached, content_type="application/json")
    async with request.app[POOL].connection() as conn:
        rows = await queries.latest_ticks(conn, [symbol])
    if symbol not in rows:
        raise ApiError(404, f"no quotes for symbol {symbol}")
    return json_ok(rows[symbol])


async def latest_quotes(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbols = list(dict.fromkeys(inputs.query_as(LatestQuotesQuery).symbols))
    cached = await request.app[REDIS].hmget(latest_quotes_key(request.app[PREFIX]), symbols)
    quotes = {s: orjson.loads(raw) for s, raw in zip(symbols, cached, strict=True) if raw}
    misses = [s for s in symbols if s not in quotes]
    if misses:
        async with request.app[POOL].connection() as conn:
            quotes.update(await queries.latest_ticks(conn, misses))
    return json_ok({"quotes": quotes, "missing": [s for s in symbols if s not in quotes]})


async def ticks(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    query = inputs.query_as(TicksQuery)
    limit = page_size(query.limit, request.app[SETTINGS])
    scope = query_scope("ticks", symbol, query)
    after = None
    if query.cursor:
        c = request.app[CURSORS].decode(query.cursor, {"ts", "source"}, scope)
        after = (cursor_time(c["ts"]), cursor_text(c["source"]))
    async with request.app[READ_POOL].connection() as conn:
        rows = await queries.ticks_page(conn, symbol, query.from_, query.to, limit, after)
        if not rows and after is None and not await queries.symbol_known(conn, symbol):
            raise ApiError(404, f"unknown symbol {symbol}")
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = request.app[CURSORS].encode({"ts": last["ts"] * 1000, "source": last["source"]}, scope)
    return json_ok({"symbol": symbol, "items": rows, "next_cursor": next_cursor})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/quotes/latest",
        latest_quotes,
        "Latest quote of several symbols",
        "quotes",
        query=LatestQuotesQuery,
        response=QuoteMap,
        not_found=False,
    ),
    Endpoint(
        "GET",
        "/v1/quotes/{symbol}/latest",
        latest_quote,
        "Latest quote of one symbol",
        "quotes",
        path_model=SymbolPath,
        response=Quote,
        hash_read=_latest_quote_field,
    ),
    Endpoint(
        "GET",
        "/v1/ticks/{symbol}",
        ticks,
        "Tick history, oldest first, cursor paginated",
        "history",
        path_model=SymbolPath,
        query=TicksQuery,
        response=TickPage,
    ),
)
