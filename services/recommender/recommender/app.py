"""Wires the recommender: consumer group 'recommender' on the owned tick shards, plus the model watcher."""

from __future__ import annotations

import asyncio
import time

import structlog

from recommender.checkpoint import CheckpointStore
from recommender.model_watcher import ModelWatcher
from recommender.processor import TickProcessor
from recommender.rules_config import load_rules_config
from recommender.settings import RecommenderSettings, owned_shards
from recommender.warmup import recent_bars, recent_days
from stocktrack_common.bar_closing import next_close_ms, sleep_until_ms
from stocktrack_common.bars import Bar
from stocktrack_common.messages import decode_tick
from stocktrack_common.runtime import WorkerContext, WorkerMain
from stocktrack_common.stream_names import RECOMMENDER_GROUP, tick_stream

log = structlog.get_logger(__name__)


def create_app(settings: RecommenderSettings) -> WorkerMain:
    """Return the recommender's main loop; configuration errors surface here, before any I/O."""
    shards = owned_shards(settings)
    rules_config = load_rules_config(settings.rules_config)
    interval_ms = settings.bar_interval_seconds * 1000
    warmup_bars = max(settings.warmup_bars, 0)

    async def main(ctx: WorkerContext) -> None:
        async def warmup(symbol: str, before_ms: int) -> list[Bar]:
            async with ctx.db.connection() as conn:
                return await recent_bars(conn, symbol, before_ms, settings.bar_interval_seconds, warmup_bars)

        async def daily_warmup(symbol: str, before_ms: int) -> list[Bar]:
            async with ctx.db.connection() as conn:
                return await recent_days(conn, symbol, before_ms, settings.daily_warmup_days)

        processor = TickProcessor(
            redis=ctx.redis,
            prefix=settings.stream_prefix,
            rules_config=rules_config,
            interval_ms=interval_ms,
            checkpoints=CheckpointStore(ctx.redis, settings.stream_prefix),
            warmup=warmup,
            daily_warmup=daily_warmup,
            daily_signals=settings.daily_signals,
            grace_ms=settings.bar_close_grace_ms,
            batch_limit=settings.consumer.batch_size,
        )
        watcher = ModelWatcher(
            redis=ctx.redis, pool=ctx.db, prefix=settings.stream_prefix, processor=processor
        )
        consumer = ctx.stream_consumer(
            settings.consumer,
            streams=[tick_stream(settings.stream_prefix, k) for k in shards],
            group=RECOMMENDER_GROUP,
            handler=processor.handle,
            decode=decode_tick,
        )
        log.info(
            "recommender consuming",
            shards=shards,
            interval_s=settings.bar_interval_seconds,
            consumer=settings.consumer_name,
        )
        await asyncio.gather(
            watcher.run(ctx.stop),
            consumer.run(ctx.stop),
            close_bars_on_time(processor, interval_ms, settings.bar_close_grace_ms, ctx.stop),
        )

    return main


async def close_bars_on_time(
    processor: TickProcessor, interval_ms: int, grace_ms: int, stop: asyncio.Event
) -> None:
    """Wake at each bar end plus grace and close what is due, ticks or no ticks.

    Woken first at the bar end itself, it computes the close ahead (`prepare_close`), so at the
    end of the grace only what late ticks changed is left to compute. A failed close (Redis down)
    leaves the bars open in the checkpoint; the next wake retries.
    """
    while not stop.is_set():
        due_ms = next_close_ms(time.time() * 1000, interval_ms, grace_ms)
        await sleep_until_ms(stop, due_ms - grace_ms)
        if stop.is_set():
            return
        try:
            await processor.prepare_close(due_ms)  # prepares nothing once the close is due
            now_ms = await sleep_until_ms(stop, due_ms)
            if stop.is_set():
                return
            await processor.close_due(now_ms)
        except Exception as exc:  # the touched states come back from the checkpoint; retried
            log.warning("closing bars on time failed; retrying at the next bar end", error=str(exc))
