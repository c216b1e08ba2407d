"""After PostgreSQL comes back, a pool serves its waiting client within a second.

psycopg_pool's own reconnect backoff doubles from 1 s, so after an outage of a few seconds its
next attempt can come many seconds after the server answers again (the writer's first row once
came 6.9 s after a 20 s outage). The test cuts its own PostgreSQL (never the shared one) with
`pg_ctl stop -m immediate`, keeps a client asking each pool for a connection through the outage,
restarts the server, and measures from the moment a fresh connection succeeds to the moment
each pool's client is served: the service pool and, as the baseline, the library's defaults.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.settings import PoolSettings
from stocktrack_devtools.servers import EmbeddedPostgres
from tests.faults.harness import stop_immediately

OUTAGE_SECONDS = 8.0
RESUME_BOUND_SECONDS = 1.0


async def served_at(pool: AsyncConnectionPool[Any], stop: asyncio.Event) -> float:
    """Ask for a connection until a query succeeds, as a consumer retrying its batch does."""
    while not stop.is_set():
        try:
            async with pool.connection(timeout=60) as conn:
                await conn.execute("SELECT 1")
            return time.monotonic()
        except psycopg.OperationalError:
            await asyncio.sleep(0.05)
    raise AssertionError("never served")


async def answering_at(url: str) -> float:
    """When the server first accepts a brand-new connection (what any pool could get at best)."""
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=2)
        except psycopg.OperationalError:
            await asyncio.sleep(0.02)
            continue
        await conn.close()
        return time.monotonic()


async def test_pool_serves_within_a_second_of_postgres_answering(own_postgres: EmbeddedPostgres) -> None:
    url = own_postgres.url
    pool = await open_pg_pool(url, PoolSettings(pool_min=2, pool_max=4), name="resume")
    baseline: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=2, max_size=4, open=False, check=AsyncConnectionPool.check_connection
    )
    await baseline.open(wait=True, timeout=30)
    stop = asyncio.Event()
    try:
        for p in (pool, baseline):
            async with p.connection(timeout=30) as conn:
                await conn.execute("SELECT 1")

        await asyncio.to_thread(stop_immediately, own_postgres)
        down_at = time.monotonic()
        clients = [asyncio.create_task(served_at(p, stop)) for p in (pool, baseline)]
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            assert not any(c.done() for c in clients), "served while the server was down"
            await asyncio.sleep(0.2)

        answered = asyncio.create_task(answering_at(url))
        await asyncio.to_thread(own_postgres.start)
        answered_at = await asyncio.wait_for(answered, 30)
        ours = await asyncio.wait_for(clients[0], 30) - answered_at
        theirs = await asyncio.wait_for(clients[1], 60) - answered_at
        print(
            f"\nafter a {OUTAGE_SECONDS:.0f}s outage, served {ours:.2f}s after the server answered"
            f" (psycopg_pool defaults: {theirs:.2f}s)"
        )
        assert ours <= RESUME_BOUND_SECONDS
    finally:
        stop.set()
        await pool.close()
        await baseline.close()
