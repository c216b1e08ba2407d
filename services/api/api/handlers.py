"""Route handlers: parse and validate, query, shape JSON. No SQL here (see queries.py)."""

from __future__ import annotations

import datetime as dt

import orjson
from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from api import queries
from api.params import TicksQuery, decode_cursor, encode_cursor, parse_symbol
from stocktrack_common.http_errors import ApiError
from stocktrack_common.stream_names import latest_quotes_key

POOL: web.AppKey[AsyncConnectionPool] = web.AppKey("pool", AsyncConnectionPool)
PREFIX: web.AppKey[str] = web.AppKey("prefix", str)
REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)


async def latest_quote(request: web.Request) -> web.Response:
    symbol = parse_symbol(request.match_info["symbol"])
    redis = request.app[REDIS]
    cached = await redis.hget(latest_quotes_key(request.app[PREFIX]), symbol)
    if cached:
        return web.json_response(orjson.loads(cached), dumps=lambda o: orjson.dumps(o).decode())
    async with request.app[POOL].connection() as conn:
        row = await queries.latest_tick(conn, symbol)
    if row is None:
        raise ApiError(404, f"no quotes for symbol {symbol}")
    return web.json_response(row)


async def ticks(request: web.Request) -> web.Response:
    symbol = parse_symbol(request.match_info["symbol"])
    query = TicksQuery.model_validate(dict(request.query))
    after = None
    if query.cursor:
        c = decode_cursor(query.cursor)
        after = (dt.datetime.fromtimestamp(int(c["ts"]) / 1_000_000, tz=dt.UTC), str(c["source"]))
    async with request.app[POOL].connection() as conn:
        rows = await queries.ticks_page(conn, symbol, query.from_, query.to, query.limit, after)
        if not rows and after is None and not await queries.symbol_known(conn, symbol):
            raise ApiError(404, f"unknown symbol {symbol}")
    next_cursor = None
    if len(rows) == query.limit:
        last = rows[-1]
        next_cursor = encode_cursor({"ts": last["ts"] * 1000, "source": last["source"]})
    return web.json_response({"symbol": symbol, "items": rows, "next_cursor": next_cursor})
