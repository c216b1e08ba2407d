"""Keeps the processor's model in step with the registry: load at start, reload on {p}:models events.

Every replica reads the models stream with plain XREAD (no group) so each one sees each event.
The event only says "something changed"; the replica then loads whatever is active in Postgres,
so a missed or reordered event cannot leave it on a stale model for longer than the next event.
A model that fails the registry's compatibility check is refused: the replica keeps serving
rule signals (and its previous model, if any) and logs why.
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
from recommender.processor import TickProcessor
from recommender.registry import ModelMismatchError, load_active_model_async, read_models_events
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.stream_names import models_stream

log = structlog.get_logger(__name__)

RELOADS = Counter("stocktrack_recommender_model_loads_total", "Model (re)loads by outcome", ["outcome"])
MODEL_ACTIVE = Gauge("stocktrack_recommender_model_active", "1 while a model produces signals")


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
        try:
            async with self.pool.connection() as conn:
                model = await load_active_model_async(conn, FEATURE_NAMES)
        except ModelMismatchError as exc:
            RELOADS.labels("refused").inc()
            log.error("active model refused", error=str(exc))
            return
        current = self.processor.model
        if model is None:
            if current is not None:
                log.info("no active model any more; rule signals only")
            RELOADS.labels("none").inc()
        elif current is None or current.id != model.id:
            log.info("model loaded", model_id=model.id)
            RELOADS.labels("loaded").inc()
        self.processor.model = model
        MODEL_ACTIVE.set(0 if model is None else 1)

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
