"""The watch list: read by anyone allowed to read, changed only with a write-scoped key.

What is tracked is the configured `SYMBOLS` plus the active rows of the `symbols` table (added
through this API); the list says where each came from, so a fresh deployment shows the symbols
it prices rather than an empty table.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.http.endpoints import Endpoint, Inputs, json_ok
from api.market import queries
from api.market.models import SymbolCreate, SymbolList, SymbolOut, SymbolPath, SymbolsQuery
from api.settings import POOL, SETTINGS
from stocktrack_common.http_errors import ApiError


def tracked(configured: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configured symbols (origin `config`, always active) merged with the table's rows (`api`)."""
    by_symbol = {row["symbol"]: {**row, "origin": "api"} for row in rows}
    for symbol in configured:
        row = by_symbol.get(symbol)
        by_symbol[symbol] = (
            {**row, "active": True, "origin": "config"}
            if row
            else {
                "symbol": symbol,
                "name": None,
                "exchange": None,
                "currency": "USD",
                "active": True,
                "added_at": None,
                "origin": "config",
            }
        )
    return [by_symbol[s] for s in sorted(by_symbol)]


async def list_symbols(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    query = inputs.query_as(SymbolsQuery)
    async with request.app[POOL].connection() as conn:
        rows = await queries.list_symbols(conn, query.include_inactive)
    return json_ok({"items": tracked(request.app[SETTINGS].symbols, rows)})


async def add_symbol(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    body = inputs.body_as(SymbolCreate)
    async with request.app[POOL].connection() as conn:
        row, created = await queries.upsert_symbol(
            conn, body.symbol.upper(), body.name, body.exchange, body.currency
        )
    (item,) = tracked([s for s in request.app[SETTINGS].symbols if s == row["symbol"]], [row])
    return json_ok(item, status=201 if created else 200)


async def remove_symbol(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    symbol = inputs.path_as(SymbolPath).symbol.upper()
    if symbol in request.app[SETTINGS].symbols:
        raise ApiError(409, f"{symbol} is configured by SYMBOLS; remove it there", code="conflict")
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
        "Remove a symbol added through the API from the watch list (soft; 409 for one in SYMBOLS)",
        "symbols",
        scope="write",
        path_model=SymbolPath,
        status=204,
        also_errors=(409,),
    ),
)
