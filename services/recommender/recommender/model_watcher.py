"""Keeps the processor's models in step with the registry: load at start, reload on {p}:models events.

Every replica reads the models stream with plain XREAD (no group) so each one sees each event.
The event only says "something changed"; the replica then loads whatever is active in Postgres,
so a missed or reordered event cannot leave it on a stale model for longer than the next event.
Every active model (one per interval and scope) is loaded; one whose interval this replica builds
no bars for, or whose features or library versions differ, is refused with a log saying why,
and the others (and the rules) keep serving.
"""

from __future__ import annotations

import asyncio

import psycopg
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recommender.features import FEATURE_NAMES
from recommender.model_registry import load_active_models_async, read_models_events
from recommender.processor import TickProcessor
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.stream_names import models_stream

log = structlog.get_logger(__name__)

RELOADS = Counter("stocktrack_recommender_model_loads_total", "Model (re)loads by outcome", ["outcome"])
MODEL_ACTIVE = Gauge("stocktrack_recommender_model_active", "Active models this replica applies")


class ModelWatcher:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        pool: AsyncConnectionPool,
        prefix: str,
        processor: TickProcessor,
        block_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.prefix = prefix
        self.processor = processor
        self.block_ms = block_ms

    async def reload(self) -> None:
        """Load every active model this replica can use; log each refused one with the reason."""
        processor = self.processor
        async with self.pool.connection() as conn:
            models, refused = await load_active_models_async(conn, FEATURE_NAMES, processor.intervals)
        for model_id, reason in refused.items():
            RELOADS.labels("refused").inc()
            log.error("active model refused", model_id=model_id, error=reason)
        before = {m.id for m in processor.models}
        for model in models:
            if model.id not in before:
                RELOADS.labels("loaded").inc()
                log.info("model loaded", model_id=model.id, interval=model.interval, scope=model.scope)
        if before and not models:
            log.info("no usable active model any more; rule signals only")
        if not models:
            RELOADS.labels("none").inc()
        processor.models = tuple(models)
        MODEL_ACTIVE.set(len(models))

    async def run(self, stop: asyncio.Event) -> None:
        """Load once, then follow the models stream until `stop`."""
        # Note the stream's tail before the first load, so an event published meanwhile is not missed.
        entries = await self.redis.xrevrange(models_stream(self.prefix), count=1)
        last_id = "0-0"
        if entries:
            raw = entries[0][0]
            last_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        await self.reload()
        while not stop.is_set():
            try:
                last_id, events = await read_models_events(self.redis, self.prefix, last_id, self.block_ms)
                if events:
                    log.info("models event", events=events)
                    await self.reload()
            except (RedisConnectionError, RedisTimeoutError, OSError, psycopg.OperationalError) as exc:
                log.warning("model reload failed, will retry", error=str(exc))
                await sleep_or_stop(stop, 1.0)
