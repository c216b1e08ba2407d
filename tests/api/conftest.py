"""The api in-process (aiohttp test server) on this test's own database and stream prefix."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.api_keys import create_key
from stocktrack_common.partitions import ensure_tick_partitions
from stocktrack_common.settings import PoolSettings
from tests.support.rollups import roll_up

PEPPER = "test-pepper"
T0 = dt.datetime(2024, 5, 1, 13, 30, tzinfo=dt.UTC)  # a Wednesday, market open


def ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


ApiFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


@pytest_asyncio.fixture
async def make_api(redis_url: str, db_url: str, prefix: str) -> AsyncIterator[ApiFactory]:
    """Start an api with settings overrides; all are closed after the test."""
    clients: list[TestClient] = []  # type: ignore[type-arg]

    async def make(**overrides: Any) -> TestClient:  # type: ignore[type-arg]
        values: dict[str, Any] = {
            "redis_url": SecretStr(redis_url),
            "database_url": SecretStr(db_url),
            "stream_prefix": prefix,
            "api_key_pepper": SecretStr(PEPPER),
            "api_key_cache_seconds": 0,
            "symbols": [],  # a watch list only of what a test adds (tests of SYMBOLS set it)
            "db": PoolSettings(pool_min=1, pool_max=4),
        }
        values.update(overrides)
        client = TestClient(TestServer(create_app(ApiSettings(**values))))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest_asyncio.fixture
async def api(make_api: ApiFactory) -> TestClient:  # type: ignore[type-arg]
    return await make_api()


@pytest_asyncio.fixture
async def keys(pg_pool: AsyncConnectionPool) -> dict[str, str]:
    """API keys by role: `read` (read scope), `write` (write scope), `revoked`."""
    result = {}
    async with pg_pool.connection() as conn:
        for name, scopes in (("read", ["read"]), ("write", ["write"]), ("revoked", ["write"])):
            row, key = await create_key(conn, name, scopes, PEPPER)
            result[name] = key
            if name == "revoked":
                await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (row.id,))
    return result


async def insert_ticks(pool: AsyncConnectionPool, rows: list[tuple[str, dt.datetime, str, int, str]]) -> None:
    async with pool.connection() as conn:
        await ensure_tick_partitions(conn, {r[1].date() for r in rows})
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO ticks (symbol, ts, price, size, source) VALUES (%s, %s, %s, %s, %s)",
                [(s, ts, Decimal(p), size, src) for s, ts, p, size, src in rows],
            )


async def insert_bars(
    pool: AsyncConnectionPool,
    symbol: str,
    start: dt.datetime,
    closes: list[float],
    step: dt.timedelta = dt.timedelta(minutes=1),
) -> list[dict[str, Any]]:
    """1-minute bars with simple, checkable values: open=close-0.5, high=close+1, low=close-1."""
    rows = []
    for i, close in enumerate(closes):
        bucket = start + step * i
        rows.append(
            {
                "bucket": bucket,
                "open": Decimal(str(close)) - Decimal("0.5"),
                "high": Decimal(str(close)) + 1,
                "low": Decimal(str(close)) - 1,
                "close": Decimal(str(close)),
                "volume": 100 + i,
                "trades": 1 + i % 3,
            }
        )
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    symbol,
                    r["bucket"],
                    r["open"],
                    r["high"],
                    r["low"],
                    r["close"],
                    r["volume"],
                    r["trades"],
                    r["bucket"],
                    r["bucket"] + dt.timedelta(seconds=59),
                )
                for r in rows
            ],
        )
        await roll_up(conn)  # what the writer's roller has done by the time a client asks
    return rows


async def insert_signals(
    pool: AsyncConnectionPool, rows: list[tuple[str, dt.datetime, str, str, float]]
) -> None:
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (s, ts, src, action, conf, Decimal("100.5"), orjson.dumps({"rsi": 25.0}).decode())
                for s, ts, src, action, conf in rows
            ],
        )


async def get_json(client: TestClient, path: str, **kwargs: Any) -> tuple[int, Any]:  # type: ignore[type-arg]
    response = await client.get(path, **kwargs)
    body = await response.json() if response.content_type == "application/json" else await response.text()
    return response.status, body


def assert_error(status: int, body: Any, expected_status: int, code: str | None = None) -> None:
    """The documented error shape: {"error": {"code", "message", "details"}}."""
    assert status == expected_status, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
