"""The one script call that publishes a batch's signals and writes its checkpoints, on real Redis."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import redis.asyncio as aioredis

from recommender.checkpoint import CheckpointStore
from stocktrack_common.messages import Signal, decode_signal
from stocktrack_common.stream_names import recommender_recent_key, recommender_state_key, signals_stream

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def _signal(i: int) -> Signal:
    return Signal(
        symbol=f"S{i:03d}",
        ts=1_700_000_000_000 + i,
        price=Decimal("101.25"),
        action=("buy", "sell", "hold")[i % 3],
        confidence=0.123456 + i / 10_000,
        source="rules" if i % 2 else "model:m-1",
        reasons={"rules": ["rsi_oversold"], "bar": {"close": "101.25", "n": i}, "text": "é \\u0000 x"},
    )


async def test_signals_go_out_field_for_field_as_xadd_writes_them(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """Consumers parse the entries: the script must write the very field lists an XADD of to_fields does."""
    stream = signals_stream(prefix)
    signals = [_signal(i) for i in range(600)]
    reference = f"{prefix}:{{signals}}:reference"
    for s in signals:
        await redis_client.xadd(reference, s.to_fields())  # type: ignore[arg-type]
    await CheckpointStore(redis_client, prefix).commit(stream, [s.to_fields() for s in signals], {}, {})
    published = [fields for _, fields in cast(Entries, await redis_client.xrange(stream))]
    expected = [fields for _, fields in cast(Entries, await redis_client.xrange(reference))]
    assert published == expected and len(published) == 600
    assert [decode_signal(f) for f in published] == signals


async def test_full_states_replace_recent_records_past_the_unpack_chunk(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """1,200 symbols: more argument pairs than one chunk of the script's HSET/HDEL (500 pairs)."""
    store = CheckpointStore(redis_client, prefix)
    symbols = [f"S{i:04d}" for i in range(1_200)]
    await store.commit(signals_stream(prefix), [], {}, {s: b"recent-" + s.encode() for s in symbols})
    assert await redis_client.hlen(recommender_recent_key(prefix)) == 1_200
    full = {s: b"full-" + s.encode() for s in symbols[:1_100]}
    await store.commit(signals_stream(prefix), [], full, {"S1150": b"newer"})
    assert await redis_client.hgetall(recommender_state_key(prefix)) == {
        s.encode(): v for s, v in full.items()
    }
    assert await redis_client.hgetall(recommender_recent_key(prefix)) == {
        **{s.encode(): b"recent-" + s.encode() for s in symbols[1_100:]},
        b"S1150": b"newer",
    }
    assert await redis_client.xlen(signals_stream(prefix)) == 0


async def test_the_script_is_loaded_again_when_redis_lost_it(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """After a Redis restart or failover the script cache is empty; the next commit loads it again."""
    store = CheckpointStore(redis_client, prefix)
    await store.commit(signals_stream(prefix), [_signal(1).to_fields()], {"S001": b"a"})
    await redis_client.script_flush()
    await store.commit(signals_stream(prefix), [_signal(2).to_fields()], {"S002": b"b"})
    assert await redis_client.xlen(signals_stream(prefix)) == 2
    assert await redis_client.hlen(recommender_state_key(prefix)) == 2
