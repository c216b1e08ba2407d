"""A tick for a day retention dropped is dead-lettered at once; a day still kept is stored, no restart.

Also: a partition that disappears behind a running writer's back (an operator's DROP) is recreated
on demand, because the writer forgets its partition cache when an insert finds no partition.
"""

from __future__ import annotations

import datetime as dt

import orjson
import psycopg
import redis

from stocktrack_common.messages import Tick
from stocktrack_common.partitions import partition_name
from stocktrack_common.stream_names import dead_stream, shard_for, tick_stream
from tests.janitor.conftest import RunJanitor
from tests.janitor.tick_data import load_ticks, make_ticks, partition_names, today_utc
from tests.support.processes import Services
from tests.support.waiting import wait_until

SHARDS = 2


def noon_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp() * 1000)


def publish(redis_url: str, prefix: str, symbol: str, day: dt.date, price: str) -> None:
    client = redis.Redis.from_url(redis_url)
    tick = Tick(symbol=symbol, ts=noon_ms(day), price=price, size=1, source="late")  # type: ignore[arg-type]
    client.xadd(tick_stream(prefix, shard_for(symbol, SHARDS)), tick.to_fields())  # type: ignore[arg-type]
    client.close()


def stored(db_url: str, symbol: str) -> list[tuple[dt.date, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT ts, price::text FROM ticks WHERE symbol = %s AND source = 'late' ORDER BY ts", (symbol,)
        ).fetchall()
    return [(ts.astimezone(dt.UTC).date(), price) for ts, price in rows]


def dead_letters(redis_url: str, prefix: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    entries = client.xrange(dead_stream(prefix))
    client.close()
    return [fields for _, fields in entries]


async def test_late_tick_for_dropped_day_dead_lettered_at_once_kept_day_stored(
    services: Services, db_url: str, redis_url: str, prefix: str, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    dropped_day, kept_day = today - dt.timedelta(days=5), today - dt.timedelta(days=1)
    load_ticks(db_url, make_ticks([dropped_day, kept_day]))
    writer = services.start("writer", TICK_RETENTION_DAYS="3", TICK_SHARDS=str(SHARDS))
    writer.wait_healthy(timeout=120)
    publish(redis_url, prefix, "AAPL", kept_day, "101.5")  # the writer now knows kept_day's partition
    wait_until(lambda: len(stored(db_url, "AAPL")) == 1, 30, "the first tick")

    report = await run_janitor("retention", tick_retention_days=3, tick_shards=SHARDS)
    assert report[0].status == "ok"
    assert partition_name(dropped_day) not in partition_names(db_url)

    publish(redis_url, prefix, "MSFT", dropped_day, "99.25")
    publish(redis_url, prefix, "MSFT", kept_day, "100.75")

    wait_until(lambda: len(stored(db_url, "MSFT")) == 1, 30, "the kept day's tick")
    wait_until(lambda: len(dead_letters(redis_url, prefix)) == 1, 30, "the dead letter")
    assert stored(db_url, "MSFT") == [(kept_day, "100.75")]
    (letter,) = dead_letters(redis_url, prefix)
    assert letter["deliveries"] == "1", "refused at decode, not after MAX_DELIVERIES failed inserts"
    assert "older than tick retention" in letter["error"] and dropped_day.isoformat() in letter["error"]
    assert orjson.loads(letter["fields"])["symbol"] == "MSFT"
    assert writer.proc.poll() is None


async def test_partition_dropped_behind_the_writers_back_is_recreated(
    services: Services, db_url: str, redis_url: str, prefix: str
) -> None:
    day = today_utc() - dt.timedelta(days=1)
    writer = services.start("writer", TICK_SHARDS=str(SHARDS))
    writer.wait_healthy(timeout=120)
    publish(redis_url, prefix, "NVDA", day, "10.5")
    wait_until(lambda: len(stored(db_url, "NVDA")) == 1, 30, "the first tick")

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {partition_name(day)}")
    publish(redis_url, prefix, "NVDA", day, "11.5")

    wait_until(lambda: stored(db_url, "NVDA") == [(day, "11.5")], 30, "the tick after the drop")
    assert dead_letters(redis_url, prefix) == []
    assert writer.proc.poll() is None
