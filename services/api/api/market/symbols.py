"""The watch list: read by anyone allowed to read, changed only with a write-scoped key."""

from __future__ import annotations

from aiohttp import web

from api.http.endpoints import Endpoint, Inputs, json_ok
from api.market import queries
from api.market.models import SymbolCreate, SymbolList, SymbolOut, SymbolPath, SymbolsQuery
from api.settings import POOL
from stocktrack_common.http_errors import ApiError


async def list_symbols(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    query = inputs.query_as(SymbolsQuery)
    async with request.app[POOL].connection() as conn:
        items = await queries.list_symbols(conn, query.include_inactive)
    return json_ok({"items": items})


async def add_symbol(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    body = inputs.body_as(SymbolCreate)
    async with request.app[POOL].connection() as conn:
        row, created = await queries.upsert_symbol(
            conn, body.symbol.upper(), body.name, body.exchange, body.currency
        )
    return json_ok(row, status=201 if created else 200)


async def remove_symbol(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    async with request.app[POOL].connection() as conn:
        if not await queries.deactivate_symbol(conn, symbol):
            raise ApiError(404, f"symbol {symbol} is not on the watch list")
    return web.Response(status=204)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/symbols",
        list_symbols,
        "The watch list",
        "symbols",
        query=SymbolsQuery,
        response=SymbolList,
        not_found=False,
    ),
    Endpoint(
        "POST",
        "/v1/symbols",
        add_symbol,
        "Add or re-activate a symbol (201 when new, 200 when it existed)",
        "symbols",
        scope="write",
        body=SymbolCreate,
        response=SymbolOut,
        status=201,
        not_found=False,
        also_ok=(200,),
    ),
    Endpoint(
        "DELETE",
        "/v1/symbols/{symbol}",
        remove_symbol,
        "Remove a symbol from the watch list (soft)",
        "symbols",
        scope="write",
        path_model=SymbolPath,
        status=204,
    ),
)
