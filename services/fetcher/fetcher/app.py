"""Wires the fetcher: a tick source from the PROVIDER setting, published to the shard streams."""

from __future__ import annotations

import structlog

from fetcher.providers.base import TickSource
from fetcher.providers.registry import build_source
from fetcher.settings import FetcherSettings
from fetcher.tick_publisher import TickPublisher
from stocktrack_common.worker_runtime import WorkerContext, WorkerMain

log = structlog.get_logger(__name__)


def create_app(settings: FetcherSettings, source: TickSource | None = None) -> WorkerMain:
    source = source if source is not None else build_source(settings)

    async def main(ctx: WorkerContext) -> None:
        publisher = TickPublisher(ctx.redis, settings.stream_prefix, settings.tick_shards)
        published = 0
        log.info("fetching", provider=source.name, symbols=len(settings.symbols))
        try:
            async for batch in source.batches(ctx.stop):
                ctx.heartbeat.beat()
                await publisher.publish(batch)
                published += len(batch)
        finally:
            await source.aclose()
            log.info("fetcher finished", published=published)

    return main
