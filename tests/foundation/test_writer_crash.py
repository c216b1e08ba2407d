"""Crash safety: kill -9 the writer mid-batch, restart it, and every tick is stored exactly once."""

from __future__ import annotations

import psycopg
import redis

from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import shard_for, tick_stream
from tests.support.processes import Services
from tests.support.waiting import wait_until

N = 20_000
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "BRK.B"]


def publish(redis_url: str, prefix: str, shards: int) -> int:
    client = redis.Redis.from_url(redis_url)
    base = 1_790_000_000_000
    pipe = client.pipeline(transaction=False)
    for i in range(N):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        tick = Tick(
            symbol=symbol,
            ts=base + i * 37,
            price=f"{100 + (i % 97) / 10:.2f}",
            size=i % 500,  # type: ignore[arg-type]
            source="sim",
        )
        pipe.xadd(tick_stream(prefix, shard_for(symbol, shards)), tick.to_fields())  # type: ignore[arg-type]
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    client.close()
    return sum(i % 500 for i in range(N))


def count(db_url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ticks), (SELECT count(DISTINCT (symbol, ts, source)) FROM ticks),"
            " (SELECT coalesce(sum(volume), 0) FROM bars_1m), (SELECT coalesce(sum(trades), 0) FROM bars_1m)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def test_kill_9_mid_batch_then_restart_stores_every_tick_once(
    services: Services, redis_url: str, db_url: str, prefix: str
) -> None:
    total_volume = publish(redis_url, prefix, shards=4)
    writer = services.start("writer", name="writer-0", WRITER_BATCH_SIZE="500", TICK_SHARDS="4")
    wait_until(lambda: count(db_url)[0] > 0, 60, "first rows")
    writer.kill()
    stored_at_crash = count(db_url)[0]
    assert stored_at_crash < N, "the writer finished before it could be killed; the test proved nothing"

    restarted = services.start("writer", name="writer-0", WRITER_BATCH_SIZE="500", TICK_SHARDS="4")
    client = redis.Redis.from_url(redis_url)

    def acknowledged() -> bool:
        groups = [g for k in range(4) for g in client.xinfo_groups(tick_stream(prefix, k))]
        return all(int(g["pending"]) == 0 and g.get("lag") in (0, None) for g in groups)

    # Once every entry is acknowledged nothing can be redelivered: the counts below are final.
    wait_until(lambda: count(db_url)[0] >= N and acknowledged(), 90, "all ticks stored and acknowledged")
    client.close()
    rows, distinct, volume, trades = count(db_url)
    print(
        f"\npublished={N} stored_at_crash={stored_at_crash} rows={rows} duplicates={rows - distinct}"
        f" lost={N - distinct}"
    )
    assert rows == distinct == N
    assert volume == total_volume and trades == N, "bars counted a redelivered tick twice"
    client = redis.Redis.from_url(redis_url)
    pending = sum(int(g["pending"]) for k in range(4) for g in client.xinfo_groups(tick_stream(prefix, k)))
    client.close()
    assert pending == 0
    assert restarted.terminate() == 0
