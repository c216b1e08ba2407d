"""The shared stream consumer against a real Redis: acks, retries, dead letters, claims, shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis

from stocktrack_common.consumer import Delivery, StreamConsumer, group_info
from stocktrack_common.health import Heartbeat
from stocktrack_common.messages import MessageError, Tick, decode_tick
from tests.support.waiting import wait_until_async


def tick_fields(i: int, symbol: str = "AAPL") -> dict[str, str]:
    return {
        "v": "1",
        "symbol": symbol,
        "ts": str(1_700_000_000_000 + i),
        "price": f"{100 + i % 7}.5",
        "size": str(i % 300),
        "source": "sim",
    }


async def run_until(
    consumer: StreamConsumer[Tick], done: Callable[[], Awaitable[bool]], timeout: float = 15
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until_async(done, timeout, "the consumer to finish its work")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def make_consumer(
    redis: aioredis.Redis,
    prefix: str,
    handler: Callable[[list[Delivery[Tick]]], Awaitable[None]],
    name: str = "c1",
    **kw: object,
) -> StreamConsumer[Tick]:
    options: dict[str, object] = {
        "batch_size": 50,
        "block_ms": 100,
        "max_deliveries": 3,
        "retry_delay": 0.05,
        "retry_backoff_base": 0.01,
        "retry_backoff_cap": 0.05,
        "claim_interval": 0.2,
    }
    options.update(kw)
    return StreamConsumer(
        redis,
        streams=[f"{prefix}:ticks:{{0}}"],
        group="g",
        consumer=name,
        handler=handler,
        decode=decode_tick,
        dead_stream=f"{prefix}:dead",
        **options,
    )  # type: ignore[arg-type]


async def dead_entries(redis: aioredis.Redis, prefix: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in await redis.xrange(f"{prefix}:dead")]


async def test_malformed_entries_are_dead_lettered_with_reason(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    bad = [
        {"v": "1", "symbol": "AAPL", "ts": "1", "size": "1", "source": "sim"},
        {"v": "1", "symbol": "bad symbol", "ts": "1", "price": "1", "size": "1", "source": "sim"},
        {"v": "1", "symbol": "AAPL", "ts": "1", "price": "-4", "size": "1", "source": "sim"},
        {"v": "1", "symbol": "AAPL", "ts": "1", "price": "NaN", "size": "1", "source": "sim"},
        {"v": "1", "symbol": "AAPL", "ts": "noon", "price": "1", "size": "1", "source": "sim"},
        {"v": "9", "symbol": "AAPL", "ts": "1", "price": "1", "size": "1", "source": "sim"},
    ]
    for i in range(20):
        await redis_client.xadd(stream, tick_fields(i))  # type: ignore[arg-type]
        if i < len(bad):
            await redis_client.xadd(stream, bad[i])  # type: ignore[arg-type]
    handled: list[Tick] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        handled.extend(d.message for d in batch)

    consumer = make_consumer(redis_client, prefix, handler)

    async def done() -> bool:
        return len(handled) == 20 and await redis_client.xlen(f"{prefix}:dead") == len(bad)

    await run_until(consumer, done)
    dead = await dead_entries(redis_client, prefix)
    reasons = [d["error"] for d in dead]
    assert any("price: missing field" in r for r in reasons)
    assert any("symbol: String should match pattern" in r for r in reasons)
    assert any("greater than 0" in r for r in reasons)
    assert any("price must be finite" in r for r in reasons)
    assert any("ts is not integer" in r for r in reasons)
    assert any("unknown schema version" in r for r in reasons)
    assert all(d["stream"] == stream and d["group"] == "g" for d in dead)
    assert orjson.loads(dead[0]["fields"]) == bad[0]
    assert [t.ts for t in handled] == sorted(t.ts for t in handled)
    info = await group_info(redis_client, stream, "g")
    assert info == {"pending": 0, "lag": 0}


async def test_a_flat_decoder_takes_what_it_can_and_its_refusals_are_dead_lettered(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """decode_flat sees each entry's flat field list first: a message is taken as it is, None
    sends the entry to the dict decoder, a MessageError dead-letters it with the reason."""
    stream = f"{prefix}:ticks:{{0}}"
    await redis_client.xadd(stream, tick_fields(1))  # type: ignore[arg-type]
    await redis_client.xadd(stream, tick_fields(2, symbol="MSFT"))  # type: ignore[arg-type]
    await redis_client.xadd(stream, {**tick_fields(3), "ts": "noon"})  # type: ignore[arg-type]
    await redis_client.xadd(stream, tick_fields(4, symbol="NOPE"))  # type: ignore[arg-type]
    seen: list[list[bytes]] = []

    def decode_flat(flat: list[bytes]) -> Tick | None:
        seen.append(flat)
        if b"NOPE" in flat:
            raise MessageError("no NOPE here")
        return None if b"MSFT" in flat else decode_tick(dict(zip(flat[::2], flat[1::2], strict=True)))

    handled: list[Tick] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        handled.extend(d.message for d in batch)

    consumer = make_consumer(redis_client, prefix, handler, decode_flat=decode_flat)

    async def done() -> bool:
        return len(handled) == 2 and await redis_client.xlen(f"{prefix}:dead") == 2

    await run_until(consumer, done)
    assert [t.symbol for t in handled] == ["AAPL", "MSFT"]
    assert all(isinstance(flat, list) and flat[:2] == [b"v", b"1"] for flat in seen) and len(seen) == 4
    reasons = sorted(d["error"] for d in await dead_entries(redis_client, prefix))
    assert reasons[0] == "invalid message: no NOPE here" and "ts is not integer" in reasons[1]
    assert await group_info(redis_client, stream, "g") == {"pending": 0, "lag": 0}


async def test_a_read_decoder_takes_whole_reads_and_leaves_the_rest_to_the_entries(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """decode_read gets every flat list of a fresh read; None hands each entry to the per-entry path."""
    stream = f"{prefix}:ticks:{{0}}"
    reads: list[int] = []

    def decode_read(flats: list[list[bytes]]) -> list[Tick] | None:
        reads.append(len(flats))
        if any(b"noon" in flat for flat in flats):
            return None
        return [decode_tick(dict(zip(flat[::2], flat[1::2], strict=True))) for flat in flats]

    handled: list[tuple[str, Tick]] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        handled.extend((d.id, d.message) for d in batch)

    ids = [await redis_client.xadd(stream, tick_fields(i)) for i in range(5)]  # type: ignore[arg-type]
    consumer = make_consumer(redis_client, prefix, handler, decode_read=decode_read)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))

    async def first_read_done() -> bool:
        return len(handled) == 5

    try:
        await wait_until_async(first_read_done, 15, "the first read")
        ids.append(await redis_client.xadd(stream, {**tick_fields(5), "ts": "noon"}))  # type: ignore[arg-type]
        ids.append(await redis_client.xadd(stream, tick_fields(6)))  # type: ignore[arg-type]

        async def second_read_done() -> bool:
            return len(handled) == 6 and await redis_client.xlen(f"{prefix}:dead") == 1

        await wait_until_async(second_read_done, 15, "the read with a bad entry")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [entry_id for entry_id, _ in handled] == [i.decode() for i in ids if i != ids[5]]
    assert [t.ts for _, t in handled] == [1_700_000_000_000 + i for i in (0, 1, 2, 3, 4, 6)]
    assert sum(reads) >= 7
    (letter,) = await dead_entries(redis_client, prefix)
    assert "ts is not integer" in letter["error"]


async def test_failing_handler_retries_then_dead_letters(redis_client: aioredis.Redis, prefix: str) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(30):
        await redis_client.xadd(stream, tick_fields(i))  # type: ignore[arg-type]
    poison = {1_700_000_000_000 + i for i in (3, 17, 29)}
    solo_calls: Counter[int] = Counter()
    ok: set[int] = set()

    async def handler(batch: list[Delivery[Tick]]) -> None:
        if len(batch) == 1:
            solo_calls[batch[0].message.ts] += 1
        if any(d.message.ts in poison for d in batch):
            raise ValueError("cannot handle this one")
        ok.update(d.message.ts for d in batch)

    consumer = make_consumer(redis_client, prefix, handler, max_deliveries=3)

    async def done() -> bool:
        return await redis_client.xlen(f"{prefix}:dead") == 3

    await run_until(consumer, done)
    assert len(ok) == 27 and not ok & poison
    # A failing batch is split, so each poison entry is tried on its own once per delivery.
    assert all(solo_calls[ts] == 3 for ts in poison)
    dead = await dead_entries(redis_client, prefix)
    assert all(
        "exceeded max deliveries (3)" in d["error"] and "cannot handle this one" in d["error"] for d in dead
    )
    assert sorted(int(orjson.loads(d["fields"])["ts"]) for d in dead) == sorted(poison)
    info = await group_info(redis_client, stream, "g")
    assert info is not None and info["pending"] == 0


async def test_transient_errors_keep_the_batch_without_dead_lettering(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(10):
        await redis_client.xadd(stream, tick_fields(i))  # type: ignore[arg-type]
    failures = {"left": 8}
    stored: list[int] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("database restarting")
        stored.extend(d.message.ts for d in batch)

    consumer = make_consumer(redis_client, prefix, handler, max_deliveries=2)

    async def done() -> bool:
        return len(stored) == 10

    await run_until(consumer, done, timeout=10)
    assert await redis_client.xlen(f"{prefix}:dead") == 0
    assert (await group_info(redis_client, stream, "g")) == {"pending": 0, "lag": 0}


async def test_entries_of_a_dead_consumer_are_claimed(redis_client: aioredis.Redis, prefix: str) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    await redis_client.xgroup_create(stream, "g", id="0", mkstream=True)
    for i in range(12):
        await redis_client.xadd(stream, tick_fields(i))  # type: ignore[arg-type]
    # A consumer that read and died without acking.
    await redis_client.xreadgroup("g", "crashed", {stream: ">"}, count=12)

    async def idle_long_enough() -> bool:
        pending = await redis_client.xpending_range(stream, "g", min="-", max="+", count=12)
        return all(int(p["time_since_delivered"]) > 200 for p in pending)

    await wait_until_async(idle_long_enough, 5, "the dead consumer's entries to pass the claim idle time")
    seen: list[int] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        seen.extend(d.message.ts for d in batch)

    consumer = make_consumer(redis_client, prefix, handler, name="survivor", claim_idle_ms=200)

    async def done() -> bool:
        return len(seen) == 12

    await run_until(consumer, done)
    assert sorted(seen) == [1_700_000_000_000 + i for i in range(12)]
    assert (await group_info(redis_client, stream, "g")) == {"pending": 0, "lag": 0}


async def test_stop_finishes_and_acks_the_batch_in_hand(redis_client: aioredis.Redis, prefix: str) -> None:
    stream = f"{prefix}:ticks:{{0}}"
    for i in range(40):
        await redis_client.xadd(stream, tick_fields(i))  # type: ignore[arg-type]
    stop = asyncio.Event()
    handled: list[int] = []
    entered = asyncio.Event()

    async def slow_handler(batch: list[Delivery[Tick]]) -> None:
        entered.set()
        await asyncio.sleep(0.5)
        handled.extend(d.message.ts for d in batch)

    consumer = make_consumer(redis_client, prefix, slow_handler, batch_size=40)
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(entered.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(handled) == 40
    assert (await group_info(redis_client, stream, "g")) == {"pending": 0, "lag": 0}


async def test_retrying_a_transient_error_too_long_fails_liveness_until_it_clears(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Retried forever behind a beating heartbeat, a stuck consumer would never be restarted."""
    stream = f"{prefix}:ticks:{{0}}"
    await redis_client.xadd(stream, tick_fields(1))  # type: ignore[arg-type]
    heartbeat = Heartbeat()
    database_up = asyncio.Event()
    stored: list[int] = []

    async def handler(batch: list[Delivery[Tick]]) -> None:
        if not database_up.is_set():
            raise ConnectionError("connection refused")
        stored.extend(d.message.ts for d in batch)

    consumer = make_consumer(redis_client, prefix, handler, heartbeat=heartbeat, stuck_after=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async with asyncio.timeout(10):
            while heartbeat.alive():
                await asyncio.sleep(0.05)
        assert heartbeat.age() < 1, "the loop itself kept beating: only the failure bound made it not alive"
        assert list(heartbeat.stuck()) == [f"consumer g on {stream}"]
        database_up.set()
        async with asyncio.timeout(10):
            while not (stored and heartbeat.alive()):
                await asyncio.sleep(0.05)
        assert heartbeat.stuck() == {}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
