"""`stocktrack doctor` against real servers: its exit status is what scripts and probes act on."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg import sql

from stocktrack_common.consumer import group_info
from stocktrack_common.ops_doctor import main
from stocktrack_common.ops_streams import stream_report
from stocktrack_common.partitions import ensure_tick_partitions, partition_name
from stocktrack_common.redis_client import server_version
from stocktrack_common.stream_names import signals_stream
from stocktrack_devtools.servers import database_url, free_port


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def create_partitions(db_url: str, days: list[dt.date]) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await ensure_tick_partitions(conn, days)


async def add_signal_stream(redis_url: str, prefix: str) -> None:
    """A deployment that has run has streams; doctor fails a prefix that has none."""
    client = aioredis.Redis.from_url(redis_url)
    await client.xadd(signals_stream(prefix), {"seed": "1"})
    await client.aclose()


def doctor_command(redis_url: str, db_url: str, prefix: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stocktrack_common.cli",
        "doctor",
        "--redis-url",
        redis_url,
        "--database-url",
        db_url,
        "--prefix",
        prefix,
        *extra,
    ]


async def run_doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()  # keep only the doctor's own output
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_exits_non_zero_when_tomorrows_partition_is_missing(redis_url: str, db_url: str, prefix: str) -> None:
    tomorrow = today() + dt.timedelta(days=1)
    asyncio.run(create_partitions(db_url, [today()]))

    missing = subprocess.run(
        doctor_command(redis_url, db_url, prefix), capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert f"FAIL  partitions     missing: {partition_name(tomorrow)}" in missing.stdout

    asyncio.run(create_partitions(db_url, [tomorrow]))
    asyncio.run(add_signal_stream(redis_url, prefix))
    healthy = subprocess.run(
        doctor_command(redis_url, db_url, prefix), capture_output=True, text=True, timeout=60, check=False
    )
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "OK    partitions" in healthy.stdout
    assert "OK    migrations" in healthy.stdout
    # No active model and no writer groups yet: warnings, which only --strict turns into a failure.
    assert "WARN  model" in healthy.stdout
    strict = subprocess.run(
        doctor_command(redis_url, db_url, prefix, "--strict"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert strict.returncode == 1


async def test_fails_when_a_group_lags_too_far(
    redis_client: aioredis.Redis, redis_url: str, db_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_partitions(db_url, [today(), today() + dt.timedelta(days=1)])
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(5):
        await redis_client.xadd(stream, {"n": str(i)})
    await redis_client.xgroup_create(stream, "writer", id="0")
    args = ("--redis-url", redis_url, "--database-url", db_url, "--prefix", prefix)

    code, output = await run_doctor(capsys, *args, "--max-lag", "3")
    assert code == 1
    assert f"{stream}/writer lag 5 > 3" in output

    code, output = await run_doctor(capsys, *args, "--max-lag", "10")
    assert code == 0, output


async def test_fails_fast_when_servers_are_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    started = asyncio.get_running_loop().time()
    code, output = await run_doctor(
        capsys,
        "--redis-url",
        f"redis://127.0.0.1:{port}/0",
        "--database-url",
        f"postgresql://postgres@127.0.0.1:{port}/none",
        "--prefix",
        "unused",
    )
    assert code == 1
    assert "FAIL  redis          unreachable" in output
    assert "FAIL  postgres       unreachable" in output
    assert asyncio.get_running_loop().time() - started < 15, "a probe must not hang on a dead server"


@pytest.fixture
def unmigrated_db_url(pg_server_url: str) -> Iterator[str]:
    name = f"sttest_ops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_fails_when_migrations_are_pending(
    redis_url: str, unmigrated_db_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database nobody migrated: the doctor says so instead of tripping over missing tables."""
    code, output = await run_doctor(
        capsys, "--redis-url", redis_url, "--database-url", unmigrated_db_url, "--prefix", prefix
    )
    assert code == 1
    assert "FAIL  migrations     pending: 0001_init" in output
    assert "partitions" not in output


async def test_a_lag_the_stream_contradicts_is_counted_not_trusted(
    redis_client: aioredis.Redis, redis_url: str, db_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Redis 7 group whose `lag` stays > 0 after a full drain (seen after an AOF reload) is healthy."""
    if (await server_version(redis_client))[0] < 7:
        pytest.skip("XINFO GROUPS reports lag from Redis 7.0 on; 6.2's lag is always counted")
    await create_partitions(db_url, [today(), today() + dt.timedelta(days=1)])
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(5):
        await redis_client.xadd(stream, {"n": str(i)})
    await redis_client.xgroup_create(stream, "writer", id="0")
    await redis_client.xreadgroup("writer", "w-0", {stream: ">"}, count=10)
    # The counter the server derives `lag` from, set as a reloaded AOF left it: 3 entries behind.
    await redis_client.execute_command("XGROUP", "SETID", stream, "writer", "$", "ENTRIESREAD", "2")
    (reported,) = await redis_client.xinfo_groups(stream)
    assert int(reported["lag"]) == 3 and int(reported["pending"]) == 5

    assert await group_info(redis_client, stream, "writer") == {"pending": 5, "lag": 0}
    (status,) = [s for s in await stream_report(redis_client, prefix) if s.name == stream]
    assert [(g.name, g.lag, g.lag_exact) for g in status.groups] == [("writer", 0, True)]
    args = ("--redis-url", redis_url, "--database-url", db_url, "--prefix", prefix, "--max-lag", "0")
    code, output = await run_doctor(capsys, *args)
    assert code == 0, output

    # New entries: the server's (still inflated) figure is plausible again and is reported as it
    # is, since only a count could refute it; once the group has read them, it reads 0 again.
    for i in range(2):
        await redis_client.xadd(stream, {"n": str(5 + i)})
    assert await group_info(redis_client, stream, "writer") == {"pending": 5, "lag": 5}
    await redis_client.xreadgroup("writer", "w-0", {stream: ">"}, count=10)
    assert await group_info(redis_client, stream, "writer") == {"pending": 7, "lag": 0}
