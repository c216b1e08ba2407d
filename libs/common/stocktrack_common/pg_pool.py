"""psycopg 3 async pools that wait out a missing database and come back fast after an outage.

A pool is opened without waiting: psycopg_pool connects in the background and keeps trying, so
a service started before PostgreSQL simply has no connection yet (its /readyz says so) instead
of dying. Two of the library's defaults are tuned for a service that must resume within a
second of the server answering again:

- reconnect attempts back off exponentially from 1 s (1, 2, 4, 8 ... s), so after a 20 s outage
  the next attempt can be 10 s away; here the pause is capped (`reconnect_max_delay_seconds`).
- a client that finds a broken idle connection retries the next one after a growing pause
  (0, 1, 2, 4 s ...), one per broken connection; here the first broken connection makes the
  pool test all its idle connections at once, so the client then waits for a fresh one.

A pool may also skip the check (one round trip) for a connection returned to it moments ago
(`reuse_unchecked_seconds`, 0 = always check): a worker taking a connection per small batch
otherwise pays a round trip per batch to learn what the previous batch just proved. If the
server went away within that window, the batch fails once on that connection (a transient error
its consumer retries); the broken connection coming back makes every later one checked again,
so the sweep above still runs.

Every session also gets `statement_timeout` and `idle_in_transaction_session_timeout`, so one
slow query or a forgotten transaction cannot hold a pool connection forever.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from stocktrack_common.settings import PoolSettings


class _CappedBackoff(AttemptWithBackoff):
    """psycopg_pool's reconnect backoff, starting at 0.1 s and never pausing longer than `max_delay`."""

    INITIAL_DELAY = 0.1

    def __init__(self, *, timeout: float, max_delay: float) -> None:
        super().__init__(timeout=timeout)
        self.max_delay = max_delay

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.max_delay)


class ServicePool(AsyncConnectionPool[AsyncConnection[Any]]):
    """An AsyncConnectionPool with capped reconnect pauses and a pool-wide check on the first broken connection."""

    def __init__(
        self, url: str, settings: PoolSettings, name: str, *, reuse_unchecked_seconds: float = 0.0
    ) -> None:
        self.reconnect_max_delay = settings.reconnect_max_delay_seconds
        self.reuse_unchecked_seconds = reuse_unchecked_seconds
        # When each connection now in the pool was returned in working order (monotonic seconds).
        self._returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(
            url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            name=name,
            open=False,
            kwargs={
                "autocommit": False,
                "application_name": name,
                "connect_timeout": 10,
                "options": session_options(settings),
            },
            check=self._check_or_sweep,
            # Keep trying for a day: giving up only leaves the pool empty until the next request.
            reconnect_timeout=86_400,
        )

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        # The library builds its own attempt when none is given; start every series with ours.
        if attempt is None:
            attempt = _CappedBackoff(timeout=self.reconnect_timeout, max_delay=self.reconnect_max_delay)
        await super()._add_connection(attempt, growing=growing)

    async def putconn(self, conn: AsyncConnection[Any]) -> None:
        if self.reuse_unchecked_seconds > 0:
            pgconn = conn.pgconn
            if pgconn.status == ConnStatus.OK and pgconn.transaction_status != TransactionStatus.UNKNOWN:
                self._returned_at[conn] = time.monotonic()
            else:
                # Broken: the server may have gone away under all of them, so no connection is
                # trusted unchecked until each has been checked again.
                self._returned_at.clear()
        await super().putconn(conn)

    async def _check_or_sweep(self, conn: AsyncConnection[Any]) -> None:
        returned_at = self._returned_at.pop(conn, None)
        if returned_at is not None and time.monotonic() - returned_at < self.reuse_unchecked_seconds:
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            # One dead connection usually means the server restarted and they all are: test the
            # idle ones now instead of handing them out one by one with growing pauses between.
            await self.check()
            raise


def session_options(settings: PoolSettings) -> str:
    """libpq `options`: per-session server settings (0 leaves a timeout off)."""
    statement_ms = round(settings.statement_timeout_seconds * 1000)
    idle_ms = round(settings.idle_in_transaction_timeout_seconds * 1000)
    return f"-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={idle_ms}"


async def open_pg_pool(
    url: str, settings: PoolSettings, *, name: str = "stocktrack", reuse_unchecked_seconds: float = 0.0
) -> ServicePool:
    """Open a pool without waiting for the server; connections are made (and remade) in the background.

    The caller decides how long to wait for the first connection (`wait_until_reachable` in
    the runtime waits for as long as it takes, with /readyz reporting 503 meanwhile).
    """
    pool = ServicePool(url, settings, name, reuse_unchecked_seconds=reuse_unchecked_seconds)
    await pool.open(wait=False)
    return pool
