"""`stocktrack streams` on Redis 7 (the shared server) and on a real Redis 6.2 (no XINFO GROUPS lag)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from stocktrack_common.ops_streams import render_table, stream_report
from stocktrack_common.redis_client import server_version
from stocktrack_devtools.servers import start_embedded_redis


@pytest.fixture(params=["shared", "redis-6.2"])
def any_redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "shared":
        yield request.getfixturevalue("redis_url")
        return
    url, proc = start_embedded_redis(tmp_path / "redis62")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest_asyncio.fixture
async def client(any_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(any_redis_url)
    yield redis
    await redis.aclose()


async def test_lag_pending_and_oldest_pending_age(client: aioredis.Redis, prefix: str) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(5):
        await client.xadd(stream, {"n": str(i)})
    await client.xgroup_create(stream, "writer", id="0")
    await client.xgroup_create(stream, "recommender", id="$")
    # writer: 2 delivered and not acked, 3 still to deliver
    await client.xreadgroup("writer", "w-0", {stream: ">"}, count=2)
    await client.xadd(f"{prefix}:dead", {"error": "x"})

    if (await server_version(client))[:2] == (6, 2):
        # The point of running on 6.2: the server reports no lag, so the counting fallback is what ran.
        assert all("lag" not in group for group in await client.xinfo_groups(stream))

    report = await stream_report(client, prefix)

    assert [s.name for s in report] == [f"{prefix}:dead", stream]
    ticks = report[1]
    assert ticks.length == 5
    writer, recommender = sorted(ticks.groups, key=lambda g: g.name != "writer")
    assert (writer.name, writer.consumers, writer.pending, writer.lag, writer.lag_exact) == (
        "writer",
        1,
        2,
        3,
        True,
    )
    assert writer.oldest_pending_age_s is not None and 0 <= writer.oldest_pending_age_s < 60
    assert (recommender.pending, recommender.lag, recommender.oldest_pending_age_s) == (0, 0, None)
    assert report[0].groups == []
    table = render_table(report)
    assert "writer" in table and "(no groups)" in table


def test_the_stocktrack_command_runs_streams(redis_url: str, prefix: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stocktrack_common.cli",
            "streams",
            "--redis-url",
            redis_url,
            "--prefix",
            prefix,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no streams under prefix" in result.stderr
