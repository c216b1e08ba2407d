"""The shared consumer, the ops CLI and the janitor's stream trim on a three-master cluster."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import subprocess
import sys
from typing import Any

import psycopg
import redis.asyncio as aioredis
from pydantic import SecretStr

from janitor.app import Janitor, expand
from janitor.emf_lines import EmfWriter
from janitor.settings import JanitorSettings
from stocktrack_common.consumer import Delivery, StreamConsumer, group_info
from stocktrack_common.partitions import ensure_tick_partitions
from stocktrack_common.stream_names import WRITER_GROUP, dead_stream, signals_stream, tick_streams
from stocktrack_devtools.servers import free_port
from tests.support.waiting import wait_until_async

SHARDS = 4


async def test_one_consumer_reads_shards_living_on_different_masters(
    cluster_client: aioredis.Redis, prefix: str
) -> None:
    streams = tick_streams(prefix, SHARDS)
    seen: list[tuple[str, str]] = []

    async def handle(batch: list[Delivery[bytes]]) -> None:
        seen.extend((d.stream, d.id) for d in batch)

    consumer = StreamConsumer(
        cluster_client,
        streams=streams,
        group=WRITER_GROUP,
        consumer="c1",
        handler=handle,
        decode=lambda fields: fields[b"n"],
        dead_stream=dead_stream(prefix),
        block_ms=200,
    )
    await consumer.ensure_groups()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        added = [
            (s, (await cluster_client.xadd(s, {"n": str(i)})).decode()) for i in range(10) for s in streams
        ]
        await wait_until_async(lambda: len(seen) >= len(added), 20, "every shard's entries")
        assert sorted(seen) == sorted(added)
        for stream in streams:
            info = await group_info(cluster_client, stream, WRITER_GROUP)
            assert info == {"pending": 0, "lag": 0}, (stream, info)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _cli(*argv: str, cluster: bool, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "REDIS_CLUSTER": str(cluster).lower(), **env}
    return subprocess.run(
        [sys.executable, "-m", "stocktrack_common.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
        check=False,
    )


async def test_doctor_and_streams_work_on_the_cluster_and_catch_a_wrong_mode(
    cluster_client: aioredis.Redis, cluster_url: str, db_url: str, prefix: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        today = dt.datetime.now(dt.UTC).date()
        await ensure_tick_partitions(conn, [today + dt.timedelta(days=i) for i in range(3)])
    for stream in [*tick_streams(prefix, SHARDS), signals_stream(prefix)]:
        await cluster_client.xgroup_create(stream, WRITER_GROUP, id="0", mkstream=True)
        await cluster_client.xadd(stream, {"seed": "1"})
    target = ("--redis-url", cluster_url, "--prefix", prefix)
    streams = _cli("streams", *target, cluster=True, TICK_SHARDS=str(SHARDS))
    assert streams.returncode == 0, streams.stdout + streams.stderr
    assert all(s in streams.stdout for s in tick_streams(prefix, SHARDS)), streams.stdout

    doctor = ("doctor", *target, "--database-url", db_url, "--max-lag", "100")
    right = _cli(*doctor, cluster=True, TICK_SHARDS=str(SHARDS))
    assert "OK    redis" in right.stdout and "(cluster)" in right.stdout, right.stdout + right.stderr
    wrong = _cli(*doctor, cluster=False, TICK_SHARDS=str(SHARDS))
    assert wrong.returncode == 1
    assert "FAIL  redis" in wrong.stdout and "REDIS_CLUSTER=false" in wrong.stdout, wrong.stdout


async def test_janitor_trims_every_shard_on_the_cluster(
    cluster_client: aioredis.Redis, cluster_url: str, db_url: str, prefix: str
) -> None:
    streams = tick_streams(prefix, SHARDS)
    for stream in streams:
        await cluster_client.xgroup_create(stream, WRITER_GROUP, id="$", mkstream=True)
        for i in range(30):
            await cluster_client.xadd(stream, {"n": str(i)})
    settings: dict[str, Any] = {
        "database_url": SecretStr(db_url),
        "redis_url": SecretStr(cluster_url),
        "redis_cluster": True,
        "stream_prefix": prefix,
        "tick_shards": SHARDS,
        "stream_keep": 5,
        "connect_attempts": 1,
        "metrics_port": free_port(),
    }
    janitor = Janitor(JanitorSettings(**settings), EmfWriter("Test", out=io.StringIO()))
    reports = await janitor.run(expand("trim-streams"), dry_run=False)
    assert all(r.status == "ok" for r in reports), reports
    # The group has read nothing yet (created at "$" before the entries): everything is kept.
    assert [await cluster_client.xlen(s) for s in streams] == [30] * SHARDS
    for stream in streams:
        await cluster_client.xgroup_setid(stream, WRITER_GROUP, id="$")
    reports = await janitor.run(expand("trim-streams"), dry_run=False)
    assert all(r.status == "ok" for r in reports), reports
    assert [await cluster_client.xlen(s) for s in streams] == [5] * SHARDS
