"""A batch's new symbols come back together: one checkpoint read, warm-ups side by side."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import redis.asyncio as aioredis

from recommender.checkpoint import CheckpointStore
from recommender.processor import WARMUP_CONCURRENCY, TickProcessor
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.messages import Tick
from tests.recommender.test_processor import CONFIG, MINUTE, T0


def tick(symbol: str, minute: int, seq: int, price: str = "10") -> Delivery[Tick]:
    ts = T0 + minute * MINUTE + 1_000
    return Delivery("s", f"{ts}-{seq}", Tick(symbol=symbol, ts=ts, price=Decimal(price), size=1, source="t"))


async def test_new_symbols_are_restored_together(redis_client: aioredis.Redis, prefix: str) -> None:
    running = 0
    most = 0
    asked: list[tuple[str, int]] = []

    async def warmup(symbol: str, before_ms: int) -> list[Bar]:
        nonlocal running, most
        asked.append((symbol, before_ms))
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return [Bar.of_tick(before_ms - MINUTE, before_ms - MINUTE, Decimal("9"), 5)]

    def make() -> TickProcessor:
        return TickProcessor(
            redis=redis_client,
            prefix=prefix,
            rules_config=CONFIG,
            interval_ms=MINUTE,
            checkpoints=CheckpointStore(redis_client, prefix),
            warmup=warmup,
        )

    first = make()
    await first.handle([tick("OLD", 0, 1), tick("OLD", 1, 2)])
    assert asked == [("OLD", T0)]
    asked.clear()

    # A restart meets OLD (checkpointed) and many new symbols in one batch.
    symbols = [f"N{i}" for i in range(3 * WARMUP_CONCURRENCY)]
    batch = [tick("OLD", 2, 3)] + [tick(s, 2, 4 + i) for i, s in enumerate(symbols)]
    restarted = make()
    await restarted.handle(batch)
    assert sorted(asked) == sorted((s, T0 + 2 * MINUTE) for s in symbols)
    assert 1 < most <= WARMUP_CONCURRENCY
    # OLD came from its checkpoint: two bars closed by its ticks, none warmed up again.
    assert restarted.states["OLD"].bars_closed == first.states["OLD"].bars_closed + 1
    assert all(restarted.states[s].bars_closed == 1 for s in symbols)
