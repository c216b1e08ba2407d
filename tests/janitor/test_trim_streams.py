"""`trim-streams` on real Redis: old entries go, but never one a group has not acknowledged or received."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from stocktrack_common.stream_ids import next_stream_id, parse_stream_id
from stocktrack_common.stream_names import dead_stream, signals_stream, tick_stream
from tests.janitor.conftest import RunJanitor
from tests.support.processes import Services


def stored_ids(entries: Any) -> list[str]:
    """Ids of an XRANGE reply (redis-py types replies too loosely to index them directly)."""
    return [eid.decode() for eid, _ in entries]


def entry_id(i: int) -> str:
    return f"{1_700_000_000_000 + i}-0"


async def fill(redis: aioredis.Redis, stream: str, count: int) -> list[str]:
    ids = [entry_id(i) for i in range(count)]
    async with redis.pipeline(transaction=False) as pipe:
        for i, eid in enumerate(ids):
            pipe.xadd(stream, {"n": str(i)}, id=eid)
        await pipe.execute()
    return ids


async def read(redis: aioredis.Redis, stream: str, group: str, count: int, start: str = ">") -> list[str]:
    reply: Any = await redis.xreadgroup(group, "c1", {stream: start}, count=count)
    return [eid.decode() for _, entries in reply for eid, fields in entries if fields]


async def setup_streams(redis: aioredis.Redis, prefix: str) -> dict[str, object]:
    shard = tick_stream(prefix, 0)
    ids = await fill(redis, shard, 100)
    for group in ("writer", "recommender"):
        await redis.xgroup_create(shard, group, id="0")
    delivered = await read(redis, shard, "writer", 60)
    pending = [ids[10], *ids[40:60]]
    await redis.xack(shard, "writer", *[i for i in delivered if i not in pending])
    await redis.xack(shard, "recommender", *await read(redis, shard, "recommender", 20))

    idle = tick_stream(prefix, 1)  # a group that has received nothing yet: everything is undelivered
    await fill(redis, idle, 50)
    await redis.xgroup_create(idle, "writer", id="0")

    signals = signals_stream(prefix)  # fully consumed: only the tail stays
    await fill(redis, signals, 100)
    await redis.xgroup_create(signals, "writer", id="0")
    await redis.xack(signals, "writer", *await read(redis, signals, "writer", 100))

    await fill(redis, dead_stream(prefix), 30)
    await fill(redis, f"{prefix}:found-by-scan", 40)
    return {"ids": ids, "pending": pending}


async def test_trim_keeps_every_unacknowledged_and_undelivered_entry(
    redis_client: aioredis.Redis, prefix: str, run_janitor: RunJanitor
) -> None:
    state = await setup_streams(redis_client, prefix)
    ids: list[str] = state["ids"]  # type: ignore[assignment]
    pending: list[str] = state["pending"]  # type: ignore[assignment]
    shard = tick_stream(prefix, 0)
    settings = {"stream_keep": 5, "dead_stream_keep": 20}

    dry = (await run_janitor("trim-streams", dry_run=True, **settings))[0]
    assert await redis_client.xlen(shard) == 100 and await redis_client.xlen(signals_stream(prefix)) == 100

    report = (await run_janitor("trim-streams", **settings))[0]

    assert report.status == "ok", report.error
    streams = report.details["streams"]
    assert {s: v["trimmed"] for s, v in dry.details["streams"].items()} == {
        s: v["trimmed"] for s, v in streams.items()
    }
    # Shard 0: the writer's oldest pending entry (index 10) is the boundary.
    assert streams[shard]["trimmed"] == 10 and streams[shard]["held_by"] == "writer"
    assert streams[shard]["groups"]["recommender"] == {"pending": 0, "lag": 80}
    remaining = stored_ids(await redis_client.xrange(shard))
    assert remaining == ids[10:]
    still_pending: Any = await redis_client.xpending_range(shard, "writer", min="-", max="+", count=100)
    assert sorted(p["message_id"].decode() for p in still_pending) == sorted(pending)
    assert sorted(await read(redis_client, shard, "writer", 100, start="0")) == sorted(pending)
    assert await read(redis_client, shard, "recommender", 1000) == ids[20:]
    assert await read(redis_client, shard, "writer", 1000) == ids[60:]

    assert streams[tick_stream(prefix, 1)]["trimmed"] == 0
    assert streams[signals_stream(prefix)]["trimmed"] == 95
    assert streams[dead_stream(prefix)]["trimmed"] == 10
    assert streams[f"{prefix}:found-by-scan"]["trimmed"] == 35
    assert report.counts["entries_trimmed"] == 10 + 95 + 10 + 35

    again = (await run_janitor("trim-streams", **settings))[0]
    assert again.counts["entries_trimmed"] == 0


async def test_boundary_is_the_entry_right_after_last_delivered(
    redis_client: aioredis.Redis, prefix: str, run_janitor: RunJanitor
) -> None:
    """Entries sharing a millisecond: nothing after last-delivered-id may go, even seq + 1."""
    shard = tick_stream(prefix, 0)
    for seq in range(6):
        await redis_client.xadd(shard, {"n": str(seq)}, id=f"5-{seq}")
    await redis_client.xgroup_create(shard, "writer", id="5-2")
    assert next_stream_id(parse_stream_id("5-2")) == (5, 3)

    report = (await run_janitor("trim-streams", stream_keep=1))[0]

    assert report.details["streams"][shard]["trim_below"] == "5-3"
    assert stored_ids(await redis_client.xrange(shard)) == ["5-3", "5-4", "5-5"]


async def test_idle_consumers_are_deleted_only_when_they_hold_nothing(
    redis_client: aioredis.Redis, prefix: str, run_janitor: RunJanitor
) -> None:
    """Pods renamed by rollouts leave consumers behind; one still holding entries must stay."""
    shard = tick_stream(prefix, 0)
    ids = await fill(redis_client, shard, 10)
    await redis_client.xgroup_create(shard, "writer", id="0")
    for name, count in (("gone-pod", 4), ("busy-pod", 3), ("other-gone-pod", 3)):
        reply: Any = await redis_client.xreadgroup("writer", name, {shard: ">"}, count=count)
        if name != "busy-pod":
            await redis_client.xack(shard, "writer", *[eid for _, entries in reply for eid, _ in entries])
    settings = {"stream_keep": 100, "consumer_idle_delete_hours": 1e-6}  # idle for > 3.6 ms

    dry = (await run_janitor("trim-streams", dry_run=True, **settings))[0]
    assert dry.counts["idle_consumers_deleted"] == 2
    report = (await run_janitor("trim-streams", **settings))[0]

    assert report.status == "ok", report.error
    left = {
        c["name"].decode(): int(c["pending"]) for c in await redis_client.xinfo_consumers(shard, "writer")
    }
    assert left == {"busy-pod": 3}
    assert report.counts["idle_consumers_deleted"] == 2
    still_pending: Any = await redis_client.xpending_range(shard, "writer", min="-", max="+", count=100)
    assert sorted(p["message_id"].decode() for p in still_pending) == ids[4:7]


async def test_a_running_writers_consumers_are_never_deleted(
    services: Services, redis_client: aioredis.Redis, prefix: str, run_janitor: RunJanitor
) -> None:
    """A live reader blocked on a quiet stream looks idle to XINFO; its presence key keeps it."""
    writer = services.start("writer", name="writer-live", TICK_SHARDS="2")
    writer.wait_healthy(timeout=120)
    shards = [tick_stream(prefix, k) for k in range(2)]

    async def writer_consumers() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for shard in shards:
            try:
                consumers = await redis_client.xinfo_consumers(shard, "writer")
            except ResponseError:
                consumers = []
            found[shard] = {c["name"].decode() for c in consumers}
        return found

    deadline = asyncio.get_running_loop().time() + 60
    while any("writer-live" not in names for names in (await writer_consumers()).values()):
        assert asyncio.get_running_loop().time() < deadline, "the writer never joined its groups"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # idle for far longer than the threshold below

    report = (await run_janitor("trim-streams", tick_shards=2, consumer_idle_delete_hours=1e-6))[0]

    assert report.status == "ok", report.error
    assert report.counts["idle_consumers_deleted"] == 0
    assert all("writer-live" in names for names in (await writer_consumers()).values())

    # Once the writer has stopped cleanly, its consumers are fair game.
    assert writer.terminate() == 0
    report = (await run_janitor("trim-streams", tick_shards=2, consumer_idle_delete_hours=1e-6))[0]
    assert report.counts["idle_consumers_deleted"] >= 2
