"""The tick processor in-process on real Redis: bars, change-only signals, idempotent replays, checkpoints."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from recommender.app import close_bars_on_time
from recommender.checkpoint import CheckpointStore
from recommender.processor import CLOSE_PUBLISH_CHUNK, FULL_CHECKPOINTS_PER_CALL, TickProcessor
from recommender.rule_engine import confidence_bucket
from recommender.rules_config import RulesConfig
from recommender.settings import RecommenderSettings, owned_shards
from recommender.symbol_state import INTERVAL_BAR, SymbolState
from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import recommender_recent_key, recommender_state_key, signals_stream
from stocktrack_devtools.servers import start_embedded_redis
from tests.support.waiting import wait_until_async

MINUTE = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE
# Small periods so a few dozen bars exercise every rule.
CONFIG = RulesConfig.model_validate(
    {"rsi": {"period": 3}, "macd": {"fast": 2, "slow": 4, "signal": 2}, "sma_trend": {"fast": 2, "slow": 5}}
)


def deliveries(prices: list[float], start_minute: int = 0, first_seq: int = 1) -> list[Delivery[Tick]]:
    out = []
    for i, price in enumerate(prices):
        ts = T0 + (start_minute + i) * MINUTE + 1_000
        tick = Tick(symbol="ABC", ts=ts, price=Decimal(str(price)), size=10, source="test")
        out.append(Delivery("s", f"{ts}-{first_seq + i}", tick))
    return out


def processor(
    redis_client: aioredis.Redis,
    prefix: str,
    history: list[Bar] | None = None,
    *,
    interval_ms: int = MINUTE,
    grace_ms: int = 0,
    batch_limit: int | None = None,
) -> TickProcessor:
    async def warmup(symbol: str, before_ms: int) -> list[Bar]:
        return [b for b in history or [] if b.bucket < before_ms]

    return TickProcessor(
        redis=redis_client,
        prefix=prefix,
        rules_config=CONFIG,
        interval_ms=interval_ms,
        checkpoints=CheckpointStore(redis_client, prefix),
        warmup=warmup,
        grace_ms=grace_ms,
        batch_limit=batch_limit,
    )


async def signals(redis_client: aioredis.Redis, prefix: str) -> list[dict[str, str]]:
    entries = await redis_client.xrange(signals_stream(prefix))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


PRICES = [100, 99, 98, 97, 96, 95, 94, 95, 97, 99, 101, 103, 105, 104, 102, 100, 98, 96, 97, 99]


async def test_signals_on_bar_close_only_when_the_verdict_changes(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    proc = processor(redis_client, prefix)
    await proc.handle(deliveries([float(p) for p in PRICES]))
    published = await signals(redis_client, prefix)
    assert published, "a falling-then-rising series must produce rule signals"
    assert all(s["source"] == "rules" for s in published)
    verdicts = [
        (s["action"], confidence_bucket(float(s["confidence"]), CONFIG.vote.confidence_buckets))
        for s in published
    ]
    assert all(a != b for a, b in itertools.pairwise(verdicts))
    # The last tick opened a bar that has not closed: nothing is published for its minute.
    assert max(int(s["ts"]) for s in published) < T0 + (len(PRICES) - 1) * MINUTE
    reasons = orjson.loads(published[0]["reasons"])
    assert {"rules", "indicators", "vote", "bar"} <= set(reasons)


async def test_replayed_batch_and_restart_publish_nothing_twice(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    batch = deliveries([float(p) for p in PRICES])
    first = processor(redis_client, prefix)
    await first.handle(batch)
    count = len(await signals(redis_client, prefix))
    await first.handle(batch)  # redelivery to the same process
    restarted = processor(redis_client, prefix)  # new process: state comes from the checkpoint
    await restarted.handle(batch)
    assert len(await signals(redis_client, prefix)) == count
    assert restarted.states["ABC"].bars_closed == first.states["ABC"].bars_closed
    saved = await redis_client.hget(recommender_state_key(prefix), "ABC")
    assert saved is not None and orjson.loads(saved)["last_id"] == batch[-1].id
    # The checkpoint reuses the indicators' cached JSON: it must still equal the full state.
    assert orjson.loads(saved) == orjson.loads(orjson.dumps(restarted.states["ABC"].to_state()))


async def test_cold_start_warms_up_from_history_without_publishing_it(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    history = [Bar.of_tick(T0 + i * MINUTE, T0 + i * MINUTE, Decimal(p), 10) for i, p in enumerate(PRICES)]
    proc = processor(redis_client, prefix, history)
    live = deliveries([95.0, 96.0], start_minute=len(PRICES))
    await proc.handle(live)
    state = proc.states["ABC"]
    assert state.bars_closed == len(PRICES) + 1
    published = await signals(redis_client, prefix)
    assert [int(s["ts"]) for s in published] == [T0 + len(PRICES) * MINUTE]
    indicators = orjson.loads(published[0]["reasons"])["indicators"]
    assert indicators["sma_slow"] is not None and indicators["rsi"] is not None


async def test_stale_checkpoint_falls_back_to_warm_up(redis_client: aioredis.Redis, prefix: str) -> None:
    await redis_client.hset(recommender_state_key(prefix), "ABC", orjson.dumps({"version": 99}))
    proc = processor(redis_client, prefix)
    await proc.handle(deliveries([100.0, 101.0]))
    assert proc.states["ABC"].bars_closed == 1


def test_bar_builder_closes_on_a_later_bucket_and_skips_late_ticks() -> None:
    builder = BarBuilder(MINUTE)
    assert builder.add(T0 + 1, Decimal("10"), 5) == ([], True)
    assert builder.add(T0 + 2, Decimal("12"), 5) == ([], True)
    assert builder.add(T0 + 3, Decimal("9"), 5) == ([], True)
    closed, used = builder.add(T0 + MINUTE + 1, Decimal("11"), 1)
    assert used and closed == [
        Bar(T0, Decimal("10"), Decimal("12"), Decimal("9"), Decimal("9"), 15, 3, T0 + 1, T0 + 3)
    ]
    assert builder.add(T0 + 5, Decimal("50"), 1) == ([], False)
    restored = BarBuilder.from_state(MINUTE, orjson.loads(orjson.dumps(builder.to_state())))
    assert restored.current == builder.current and restored.closed_through_ms == T0


def test_bar_builder_grace_amends_then_counts_late() -> None:
    grace = 50
    builder = BarBuilder(MINUTE, grace_ms=grace)
    builder.add(T0 + 1, Decimal("10"), 5)
    # The next bar opens inside the grace: the ended bar waits, and a late tick still amends it.
    assert builder.add(T0 + MINUTE + 10, Decimal("11"), 1) == ([], True)
    assert builder.add(T0 + 30_000, Decimal("7"), 2) == ([], True)
    restored = BarBuilder.from_state(MINUTE, orjson.loads(orjson.dumps(builder.to_state())), grace_ms=grace)
    assert restored.pending == builder.pending and restored.current == builder.current
    # Not due before its end plus grace; due at it.
    assert builder.close_due(T0 + MINUTE + grace - 1) == []
    (closed,) = builder.close_due(T0 + MINUTE + grace)
    assert (closed.bucket, closed.low, closed.volume, closed.trades) == (T0, Decimal("7"), 7, 2)
    # After the grace a tick of that bar is late: not used.
    assert builder.add(T0 + 59_999, Decimal("1"), 1) == ([], False)
    # A quiet symbol's open bar closes by the clock alone, without a later tick.
    assert builder.close_due(T0 + 2 * MINUTE + grace) == [builder_bar(T0 + MINUTE, "11", 1, T0 + MINUTE + 10)]
    assert builder.current is None and builder.closed_through_ms == T0 + MINUTE


def builder_bar(bucket: int, price: str, size: int, ts: int) -> Bar:
    return Bar.of_tick(bucket, ts, Decimal(price), size)


async def test_timer_closes_a_quiet_symbols_last_bar_once(redis_client: aioredis.Redis, prefix: str) -> None:
    batch = deliveries([float(p) for p in PRICES])
    ticking = processor(redis_client, prefix)
    await ticking.handle(batch)
    by_ticks = await signals(redis_client, prefix)
    last_bucket = T0 + (len(PRICES) - 1) * MINUTE
    assert all(int(s["ts"]) < last_bucket for s in by_ticks)
    # No tick follows the last bar: the timer closes it once its end has passed, but only when
    # the consumer is caught up (a full read means a backlog, where ticks alone close bars).
    ticking.caught_up = False
    assert await ticking.close_due(last_bucket + 10 * MINUTE) == 0
    ticking.caught_up = True
    assert await ticking.close_due(last_bucket + MINUTE - 1) == 0
    assert await ticking.close_due(last_bucket + MINUTE) == 1
    assert ticking.states["ABC"].bars_closed == len(PRICES)
    # Its checkpoint left with it: a restarted process does not close the bar again.
    restarted = processor(redis_client, prefix)
    await restarted.handle(batch)
    assert restarted.states["ABC"].bars.current is None
    assert await restarted.close_due(last_bucket + 10 * MINUTE) == 0


async def test_the_close_timer_closes_a_live_bar_without_another_tick(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """The service's timer loop: a 1 s bar of a symbol that ticks once closes at its end plus grace."""
    second = 1000
    proc = processor(redis_client, prefix, interval_ms=second, grace_ms=20, batch_limit=500)
    now = int(time.time() * 1000)
    tick = Tick(symbol="ABC", ts=now, price=Decimal("10"), size=1, source="test")
    await proc.handle([Delivery("s", f"{now}-1", tick)])
    stop = asyncio.Event()
    timer = asyncio.create_task(close_bars_on_time(proc, second, 20, stop))
    try:
        await wait_until_async(lambda: proc.states["ABC"].bars_closed == 1, 5, "the timer to close the bar")
        closed_at = time.time() * 1000
        assert closed_at >= now - now % second + second + 20
        assert proc.states["ABC"].bars.current is None
    finally:
        stop.set()
        await timer


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"tick_shards": 4}, [0, 1, 2, 3]),
        ({"tick_shards": 4, "recommender_shards": "3, 1"}, [1, 3]),
        ({"tick_shards": 5, "replica_count": 2, "replica_index": 1}, [1, 3]),
        ({"tick_shards": 4, "replica_count": 2, "consumer_name": "recommender-0"}, [0, 2]),
    ],
)
def test_owned_shards(env: dict[str, object], expected: list[int]) -> None:
    assert owned_shards(RecommenderSettings.model_validate(env)) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"tick_shards": 2, "recommender_shards": "2"},
        {"tick_shards": 4, "replica_count": 2, "consumer_name": "host"},
    ],
)
def test_owned_shards_rejects_impossible_settings(env: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        owned_shards(RecommenderSettings.model_validate(env))


@pytest.fixture
def own_redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server only this test uses: it is driven out of memory, which no shared server may be."""
    url, proc = start_embedded_redis(tmp_path / "redis")
    yield url
    proc.terminate()
    proc.wait(10)


async def test_a_failed_publish_keeps_no_state_so_the_retry_publishes_the_same_signals(
    own_redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    batch = deliveries([float(p) for p in PRICES])
    control = processor(redis_client, prefix)
    await control.handle(batch)
    expected = await signals(redis_client, prefix)
    assert expected

    client = aioredis.Redis.from_url(own_redis_url)
    try:
        proc = processor(client, prefix)
        # Out of memory, Redis refuses every write: the batch's transaction fails after the ticks
        # were folded, the moment at which the state used to run ahead of what was published.
        await client.config_set("maxmemory-policy", "noeviction")
        await client.config_set("maxmemory", "1")
        with pytest.raises(ResponseError, match="maxmemory"):
            await proc.handle(batch)
        await client.config_set("maxmemory", "0")
        assert await signals(client, prefix) == []
        assert await client.hget(recommender_state_key(prefix), "ABC") is None

        await proc.handle(batch)  # the consumer's retry of the same batch
        assert await signals(client, prefix) == expected
        await proc.handle(batch)  # and a redelivery after that adds nothing
        assert await signals(client, prefix) == expected
    finally:
        await client.aclose()


def opening_ticks(symbols: list[str], second: int = 1) -> list[Delivery[Tick]]:
    """Four one-minute bars per symbol: with CONFIG's periods the rules are first ready at the fourth."""
    out = []
    for minute in range(4):
        for i, symbol in enumerate(symbols):
            ts = T0 + minute * MINUTE + second * 1_000
            price = Decimal(100 - minute) + Decimal(i) / 100
            tick = Tick(symbol=symbol, ts=ts, price=price, size=10, source="test")
            out.append(Delivery("s", f"{ts}-{i}", tick))
    return out


async def test_a_close_where_every_symbol_signals_publishes_each_once_with_its_checkpoint(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """More signalling symbols than one close call carries: every call's signals leave with their checkpoints."""
    symbols = [f"S{i:03d}" for i in range(2 * CLOSE_PUBLISH_CHUNK + 37)]
    batch = opening_ticks(symbols)
    live = processor(redis_client, prefix)
    await live.handle(batch)
    assert await signals(redis_client, prefix) == []
    last_bucket = T0 + 3 * MINUTE
    assert await live.close_due(last_bucket + MINUTE) == len(symbols)
    published = await signals(redis_client, prefix)
    assert sorted(s["symbol"] for s in published) == symbols
    assert {int(s["ts"]) for s in published} == {last_bucket}

    # A redelivery to a restarted process restores every symbol from its checkpoint: the same
    # state (model features included, which the live process fed after publishing), nothing
    # twice. First from the recent records the close wrote, then from the full states the next
    # batch writes.
    later = opening_ticks(symbols)[: len(symbols)]
    later = [
        Delivery("s", f"{T0 + 4 * MINUTE}-{i}", d.message.model_copy(update={"ts": T0 + 4 * MINUTE}))
        for i, d in enumerate(later)
    ]
    for redelivered in (batch, later):
        if redelivered is later:
            await live.handle(later)
            # A full state for at most FULL_CHECKPOINTS_PER_CALL of them; the rest stay recent records.
            recent_left = await redis_client.hlen(recommender_recent_key(prefix))
            assert recent_left == len(symbols) - FULL_CHECKPOINTS_PER_CALL
        restarted = processor(redis_client, prefix)
        await restarted.handle(redelivered)
        assert await restarted.close_due(last_bucket + MINUTE) == 0
        assert await signals(redis_client, prefix) == published
        for symbol in symbols:
            assert restarted.states[symbol].to_state() == live.states[symbol].to_state()


async def test_a_failed_close_keeps_no_state_so_the_next_close_publishes_the_same_signals(
    own_redis_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    symbols = [f"S{i:03d}" for i in range(CLOSE_PUBLISH_CHUNK + 20)]
    batch = opening_ticks(symbols)
    close_at = T0 + 4 * MINUTE
    control = processor(redis_client, prefix)
    await control.handle(batch)
    await control.close_due(close_at)
    expected = sorted(await signals(redis_client, prefix), key=lambda s: s["symbol"])
    assert len(expected) == len(symbols)

    client = aioredis.Redis.from_url(own_redis_url)
    try:
        proc = processor(client, prefix)
        await proc.handle(batch)
        await client.config_set("maxmemory-policy", "noeviction")
        await client.config_set("maxmemory", "1")
        with pytest.raises(ResponseError, match="maxmemory"):
            await proc.close_due(close_at)
        await client.config_set("maxmemory", "0")
        assert await signals(client, prefix) == []
        assert proc.states == {}
        # The next ticks (here a redelivery) bring the states back from their checkpoints.
        await proc.handle(batch)
        assert await proc.close_due(close_at) == len(symbols)
        assert sorted(await signals(client, prefix), key=lambda s: s["symbol"]) == expected
    finally:
        await client.aclose()


def test_model_features_deferred_by_a_close_are_in_its_checkpoint() -> None:
    deferred = SymbolState.fresh("ABC", MINUTE, CONFIG)
    direct = SymbolState.fresh("ABC", MINUTE, CONFIG)
    for minute, price in enumerate(PRICES):
        bar = Bar.of_tick(T0 + minute * MINUTE, T0 + minute * MINUTE, Decimal(price), 10)
        deferred.apply_bar(INTERVAL_BAR, bar, defer_features=True)
        direct.apply_bar(INTERVAL_BAR, bar)
    assert orjson.loads(deferred.checkpoint()) == orjson.loads(direct.checkpoint())


async def test_a_close_prepared_at_the_bar_end_equals_one_computed_at_the_end_of_the_grace(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    """prepare_close's work is used only for bars nothing changed since; the outcome is the same either way."""
    grace = 5_000
    symbols = [f"S{i:03d}" for i in range(6)]
    # Half a minute in: each tick closes the bar before it (past its grace), so one bar is open.
    batch = opening_ticks(symbols, second=30)
    due = T0 + 4 * MINUTE + grace

    def tick(symbol: str, ts: int, seq: int, price: str) -> Delivery[Tick]:
        return Delivery(
            "s", f"{ts}-{seq}", Tick(symbol=symbol, ts=ts, price=Decimal(price), size=5, source="test")
        )

    # During the grace: a late tick amends S000's ended bar; a tick past the grace closes S001's.
    during_grace = [tick("S000", T0 + 4 * MINUTE - 1, 900, "91.5"), tick("S001", due + 1, 901, "99.9")]
    outcomes = []
    for prepared in (True, False):
        name = f"{prefix}-{'ahead' if prepared else 'after'}"
        proc = processor(redis_client, name, grace_ms=grace)
        await proc.handle(batch)
        if prepared:
            # Woken too late, it prepares nothing: the close never waits for its preparation.
            assert await proc.prepare_close(due, clock=lambda: due / 1000) == 0
            assert await proc.prepare_close(due, clock=lambda: (due - grace) / 1000) == len(symbols)
            ahead_rules = {s: proc.prepared[s].rules for s in symbols}
        await proc.handle(during_grace)
        assert await proc.close_due(due) == len(symbols) - 1  # S001's bar was closed by its tick
        if prepared:
            assert proc.prepared == {}
            used = {s for s in symbols if proc.states[s].rules is ahead_rules[s]}
            assert used == set(symbols) - {"S000", "S001"}
        published = [{k: v for k, v in s.items()} for s in await signals(redis_client, name)]
        outcomes.append(
            (sorted(published, key=lambda s: s["symbol"]), {s: proc.states[s].to_state() for s in symbols})
        )
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][0]) == len(symbols)
