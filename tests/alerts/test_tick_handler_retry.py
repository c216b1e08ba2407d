"""The tick handler in-process on real Redis and PostgreSQL: a batch that fails keeps no state.

Evaluating a batch moves each symbol's state (last price, last tick time) past its ticks. When
recording the alerts then fails, the consumer retries the batch; the retry must fire the same
alerts, which it cannot if the state already stands past the crossing.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import psycopg
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from alerts.app import AlertRecorder, TickHandler
from alerts.condition_state import SymbolStateStore
from alerts.rule_book import RuleCache
from alerts.sender import DeliverySender
from stocktrack_common.consumer import Delivery
from stocktrack_common.health import Heartbeat
from stocktrack_common.messages import Tick
from stocktrack_common.runtime import WorkerContext


def deliveries(prices: list[str], now_ms: int) -> list[Delivery[Tick]]:
    out = []
    for i, price in enumerate(prices):
        tick = Tick(symbol="AAPL", ts=now_ms + i, price=Decimal(price), size=100, source="sim")
        out.append(Delivery("s", f"{now_ms + i}-0", tick))
    return out


async def test_a_batch_whose_alerts_could_not_be_recorded_fires_them_on_the_retry(
    redis_client: aioredis.Redis, pg_pool: AsyncConnectionPool, db_url: str, prefix: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alert_rules (id, symbol, condition, target_type, target_url) VALUES (%s, %s, %s, %s, %s)",
            (
                "r1",
                "AAPL",
                Jsonb({"type": "price_cross", "level": "100", "direction": "either"}),
                "webhook",
                "http://127.0.0.1:9/hook",
            ),
        )
    ctx = WorkerContext(
        redis=redis_client,
        pool=pg_pool,
        heartbeat=Heartbeat(),
        stop=asyncio.Event(),
        consumer_name="alerts-0",
        stream_prefix=prefix,
    )
    async with aiohttp.ClientSession() as session:
        sender = DeliverySender(
            pg_pool,
            session,
            max_attempts=1,
            retry_base=1,
            retry_cap=1,
            poll_seconds=1,
            concurrency=1,
            lease_seconds=10,
        )
        handler = TickHandler(
            ctx,
            RuleCache(pg_pool, 0),
            SymbolStateStore(redis_client, prefix),
            AlertRecorder(ctx, sender, max_age_ms=600_000),
        )
        batch = deliveries(["99.5", "100.5"], int(time.time() * 1000))
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE alert_deliveries RENAME TO alert_deliveries_away")
        try:
            await handler(batch)
        except psycopg.errors.UndefinedTable:
            pass
        else:
            raise AssertionError("recording into a missing table must fail")
        finally:
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("ALTER TABLE alert_deliveries_away RENAME TO alert_deliveries")

        await handler(batch)  # the consumer's retry of the same batch
        await handler(batch)  # and a redelivery after it
    with psycopg.connect(db_url) as conn:
        keys = conn.execute("SELECT rule_id, event_key FROM alert_deliveries").fetchall()
    assert keys == [("r1", f"price:{batch[1].message.ts}:sim")]
