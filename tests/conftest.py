"""Fixtures on real servers: Redis and PostgreSQL found or started by stocktrack_devtools.servers.

Each run gets its own databases (a migrated template cloned per test) and its own stream
prefix per test, and removes exactly those afterwards; nothing else on the servers is touched.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.migrations import migrate
from stocktrack_devtools.servers import DevServers, database_url, find_or_start
from tests.support.databases import clone_database
from tests.support.processes import Services, child_env

RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count()


@pytest.fixture(scope="session")
def servers() -> Iterator[DevServers]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"stocktrack-test-{RUN_ID}-"))
    found = find_or_start(data_dir, log=lambda msg: print(f"\n[stocktrack tests] {msg}"))
    yield found
    found.close()


@pytest.fixture(scope="session")
def redis_url(servers: DevServers) -> str:
    return servers.redis_url


@pytest.fixture(scope="session")
def pg_server_url(servers: DevServers) -> str:
    return servers.postgres_url


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database that per-test databases are cloned from (CREATE DATABASE ... TEMPLATE)."""
    name = f"sttest_{RUN_ID}_template"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(database_url(pg_server_url, name))
        yield name
    finally:
        _drop_database(pg_server_url, name)


@pytest.fixture
def new_database(pg_server_url: str, template_db: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh migrated databases, all dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"sttest_{RUN_ID}_{next(_counter)}"
        created.append(name)
        return clone_database(pg_server_url, template_db, name)

    yield make
    for name in created:
        _drop_database(pg_server_url, name)


@pytest.fixture
def db_url(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest_asyncio.fixture
async def pg_pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(db_url, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A stream prefix no other test or run uses; its keys are deleted afterwards."""
    value = f"sttest{RUN_ID}-{next(_counter)}"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def service_env(redis_url: str, db_url: str, prefix: str) -> Callable[..., dict[str, str]]:
    """Environment for a service subprocess bound to this test's database and prefix."""

    def make(**extra: str) -> dict[str, str]:
        return child_env(REDIS_URL=redis_url, DATABASE_URL=db_url, STREAM_PREFIX=prefix, **extra)

    return make


@pytest.fixture
def services(service_env: Callable[..., dict[str, str]], tmp_path: Path) -> Iterator[Services]:
    """Start services as subprocesses (`services.start("writer")`); all are stopped afterwards."""
    svc = Services(service_env(), tmp_path)
    yield svc
    svc.stop_all()


def pytest_report_header(config: pytest.Config) -> str:
    return f"stocktrack test run {RUN_ID} (REDIS_URL={'set' if os.environ.get('REDIS_URL') else 'auto'})"
