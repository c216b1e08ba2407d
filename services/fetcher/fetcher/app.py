"""Wires the fetcher: a tick source from the PROVIDER setting, published to the shard streams.

Fetching and publishing run as two tasks joined by a bounded buffer (tick_buffer.py), so a
Redis outage of any length neither stops the source nor ends the process.
"""

from __future__ import annotations

import asyncio

import structlog

from fetcher.providers.base import TickSource
from fetcher.providers.registry import build_source
from fetcher.settings import FetcherSettings
from fetcher.tick_buffer import TickBuffer
from fetcher.tick_publisher import TickPublisher
from stocktrack_common.runtime import WorkerContext, WorkerMain

log = structlog.get_logger(__name__)


def create_app(settings: FetcherSettings, source: TickSource | None = None) -> WorkerMain:
    source = source if source is not None else build_source(settings)

    async def main(ctx: WorkerContext) -> None:
        buffer = TickBuffer(
            TickPublisher(ctx.redis, settings.stream_prefix, settings.tick_shards),
            max_ticks=settings.fetcher_buffer_max_ticks,
            retry_cap=settings.fetcher_publish_retry_max_seconds,
            shutdown_flush_seconds=settings.fetcher_shutdown_flush_seconds,
        )
        ctx.readiness["publisher"] = buffer.check

        async def fetch() -> None:
            try:
                async for batch in source.batches(ctx.stop):
                    ctx.heartbeat.beat()
                    await buffer.put(batch)
            finally:
                buffer.wake()

        log.info("fetching", provider=source.name, symbols=len(settings.symbols))
        fetching = asyncio.create_task(fetch())
        try:
            await buffer.drain(fetching, ctx.stop, ctx.heartbeat)
            await fetching  # a source error surfaces here, after what it fetched was published
        finally:
            if not fetching.done():
                fetching.cancel()
            await asyncio.gather(fetching, return_exceptions=True)
            buffer.discard("shutdown")
            await source.aclose()
            log.info("fetcher finished", published=buffer.published, dropped=buffer.dropped)

    return main
