"""The close timer's small checkpoint: the recent record on top of the full state restores the same state."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio as aioredis

from recommender.symbol_state import SymbolState
from stocktrack_common.stream_names import recommender_recent_key, recommender_state_key
from tests.recommender.test_processor import CONFIG, MINUTE, PRICES, T0, deliveries, processor, signals


async def test_timer_close_writes_a_recent_record_that_restores_the_same_state(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    prices = [float(p) for p in PRICES]
    first, rest = deliveries(prices[:12]), deliveries(prices[12:], start_minute=12, first_seq=13)
    live = processor(redis_client, prefix)
    await live.handle(first)
    full_before = await redis_client.hget(recommender_state_key(prefix), "ABC")
    assert await live.close_due(T0 + 12 * MINUTE) == 1

    # The timer's transaction carried the closed bar in a recent record, not a new full state.
    assert await redis_client.hget(recommender_state_key(prefix), "ABC") == full_before
    raw_recent = await redis_client.hget(recommender_recent_key(prefix), "ABC")
    assert raw_recent is not None
    recent = orjson.loads(raw_recent)
    assert [kind for kind, _ in recent["journal"]] == ["i"]
    assert recent["bars_closed"] == 12 and recent["bars"]["current"] is None

    # A restarted process restores both records: the same state, and the redelivered ticks
    # publish nothing.
    published = await signals(redis_client, prefix)
    restarted = processor(redis_client, prefix)
    await restarted.handle(first)
    assert await signals(redis_client, prefix) == published
    assert restarted.states["ABC"].to_state() == live.states["ABC"].to_state()

    # The next batch writes the full state and drops the recent record in the same transaction.
    await restarted.handle(rest)
    assert await redis_client.hget(recommender_recent_key(prefix), "ABC") is None
    saved = await redis_client.hget(recommender_state_key(prefix), "ABC")
    assert saved is not None
    assert orjson.loads(saved) == orjson.loads(orjson.dumps(restarted.states["ABC"].to_state()))

    # And it signals exactly as a process that never stopped.
    control_prefix = f"{prefix}:control"
    control = processor(redis_client, control_prefix)
    await control.handle(first)
    await control.close_due(T0 + 12 * MINUTE)
    await control.handle(rest)
    assert await signals(redis_client, control_prefix) == await signals(redis_client, prefix)


def test_a_recent_record_of_another_configuration_is_refused() -> None:
    state = SymbolState.fresh("ABC", MINUTE, CONFIG)
    recent = orjson.loads(state.recent_record())
    other = SymbolState.fresh("ABC", MINUTE, CONFIG)
    with pytest.raises(ValueError, match="does not fit"):
        other.apply_recent(recent, 2 * MINUTE)
