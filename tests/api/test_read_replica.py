"""DATABASE_READ_URL: the api's history reads go to a streaming replica, fresh reads to the primary.

The test starts its own primary and a real hot standby of it (pg_basebackup -R). Pausing WAL
replay on the standby freezes what it shows, which tells apart where each endpoint read from:
history still shows the frozen past, the latest-quote fallback already shows the new tick.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.migrations import migrate
from stocktrack_devtools.pg_replica import replay_lag_bytes, start_streaming_replica
from stocktrack_devtools.servers import EmbeddedPostgres, database_url, ensure_database
from tests.api.conftest import T0, ApiFactory, insert_ticks
from tests.support.waiting import wait_until


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[str, str]]:
    # Not under pytest's tmp_path: that is private to root, and the servers run as another user.
    base = Path(tempfile.mkdtemp(prefix="stocktrack-replica-"))
    primary = EmbeddedPostgres(base / "primary")
    primary.start()
    replica: EmbeddedPostgres | None = None
    try:
        primary_db = ensure_database(primary.url, "stocktrack")
        migrate(primary_db)
        replica = start_streaming_replica(primary, base / "replica")
        yield primary_db, database_url(replica.url, "stocktrack")
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def _caught_up(primary_db: str, replica_db: str) -> None:
    wait_until(lambda: replay_lag_bytes(primary_db, replica_db) == 0, 30, "the replica to replay the WAL")


def _set_replay(replica_db: str, paused: bool) -> None:
    with psycopg.connect(replica_db, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


async def test_history_reads_come_from_the_replica_and_latest_from_the_primary(
    make_api: ApiFactory, primary_and_replica: tuple[str, str]
) -> None:
    primary_db, replica_db = primary_and_replica
    pool = AsyncConnectionPool(primary_db, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    try:
        await insert_ticks(pool, [("RPLC", T0 + dt.timedelta(seconds=i), "10.5", 1, "sim") for i in range(3)])
        _caught_up(primary_db, replica_db)
        api = await make_api(database_url=primary_db, database_read_url=replica_db)
        ready = await api.get("/readyz")
        assert ready.status == 200, await ready.text()

        _set_replay(replica_db, paused=True)
        await insert_ticks(pool, [("RPLC", T0 + dt.timedelta(minutes=5), "11.25", 2, "sim")])

        history = await api.get("/v1/ticks/RPLC")
        assert history.status == 200
        assert [t["price"] for t in (await history.json())["items"]] == ["10.5"] * 3
        latest = await api.get("/v1/quotes/RPLC/latest")  # no cached quote: read from the primary
        assert latest.status == 200
        assert (await latest.json())["price"] == "11.25"

        _set_replay(replica_db, paused=False)
        _caught_up(primary_db, replica_db)
        history = await api.get("/v1/ticks/RPLC")
        assert len((await history.json())["items"]) == 4
    finally:
        await pool.close()
