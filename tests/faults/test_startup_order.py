"""Workers started before their servers wait for them and then work, without a restart.

Pods start in any order; a database can come up long after its clients. The test runs its own
redis-server and PostgreSQL on free ports (never the shared ones), starts the writer and the
fetcher while both are down, brings Redis up later and PostgreSQL 30 s after the workers, and
checks that meanwhile the workers stay alive (/healthz 200), say they are not ready (/readyz
503), log what they wait for, and then store ticks as if nothing had happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stocktrack_common.migrations import migrate
from stocktrack_devtools.servers import EmbeddedPostgres, ensure_database, free_port, start_embedded_redis
from tests.faults.harness import http_status, pipeline_env, row_count
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

POSTGRES_AFTER_SECONDS = 30.0
REDIS_AFTER_SECONDS = 5.0


@pytest.fixture
def stopped_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A migrated database on the test's own server, which is then stopped."""
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.start()
    db_url = ensure_database(server.url, "startup")
    migrate(db_url)
    server.stop()
    yield server, db_url
    server.stop()


def waits_logged(proc: ServiceProcess) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "waiting for dependencies"]


@pytest.mark.outage
def test_workers_started_before_redis_and_postgres_wait_then_work(
    services: Services, stopped_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    postgres, db_url = stopped_postgres
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = pipeline_env(tmp_path, DATABASE_URL=db_url, REDIS_URL=redis_url, SIM_TICKS_PER_SECOND="200")
    writer = services.start("writer", name="writer-0", **env)
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    redis_proc = None
    try:
        for proc in (writer, fetcher):
            proc.wait_healthy(60)  # alive: waiting is not a failure
        started = time.monotonic()

        def still_waiting(*procs: ServiceProcess) -> None:
            for proc in procs:
                assert proc.proc is not None and proc.proc.poll() is None, proc.output()[-2000:]
                assert http_status(f"http://127.0.0.1:{proc.port}/healthz") == 200
                assert http_status(f"http://127.0.0.1:{proc.port}/readyz") == 503

        while time.monotonic() - started < REDIS_AFTER_SECONDS:
            still_waiting(writer, fetcher)
            time.sleep(0.5)
        _, redis_proc = start_embedded_redis(tmp_path / "redis", redis_port)
        wait_until(lambda: http_status(f"http://127.0.0.1:{fetcher.port}/readyz") == 200, 30, "fetcher ready")

        while time.monotonic() - started < POSTGRES_AFTER_SECONDS:
            still_waiting(writer)
            time.sleep(0.5)
        missing = waits_logged(writer)[-1]["missing"]
        assert isinstance(missing, dict) and set(missing) == {"postgres"}, missing

        postgres.start()
        answering = time.monotonic()
        wait_until(lambda: row_count(db_url, "ticks") > 0, 30, "the writer's first stored tick")
        first_row = time.monotonic() - answering
        print(
            f"\nworkers started {POSTGRES_AFTER_SECONDS:.0f}s before PostgreSQL; first tick stored {first_row:.2f}s after it answered"
        )
        assert http_status(f"http://127.0.0.1:{writer.port}/readyz") == 200
        assert writer.proc is not None and writer.proc.poll() is None
        assert fetcher.proc is not None and fetcher.proc.poll() is None
        assert waits_logged(writer) and waits_logged(fetcher)
        assert fetcher.terminate() == 0 and writer.terminate() == 0
    finally:
        services.stop_all()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
