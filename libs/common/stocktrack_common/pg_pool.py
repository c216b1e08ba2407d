"""psycopg 3 async pools, opened explicitly with retry so a service can start before its database."""

from __future__ import annotations

import psycopg
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.backoff import retry_async


async def open_pg_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "stocktrack",
    attempts: int = 30,
) -> AsyncConnectionPool:
    """Open a pool and prove one connection works; back off while PostgreSQL is unreachable."""
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"autocommit": False, "application_name": name, "connect_timeout": 10},
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=300,
    )

    async def open_and_check() -> None:
        await pool.open(wait=True, timeout=10)

    try:
        await retry_async(
            open_and_check,
            what="postgres connect",
            retry_on=(psycopg.OperationalError, TimeoutError, OSError),
            attempts=attempts,
        )
    except BaseException:
        await pool.close()
        raise
    return pool
