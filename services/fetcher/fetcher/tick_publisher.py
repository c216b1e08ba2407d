"""Publishes tick batches to the shard streams, one pipelined round trip per batch.

No MAXLEN on XADD: trimming here could drop entries a consumer group has not read yet; the
janitor trims safely instead (docs/architecture.md, invariants).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import shard_for, tick_stream

PUBLISHED = Counter(
    "stocktrack_fetcher_ticks_published_total", "Ticks published to the tick streams", ["source"]
)
LAST_PUBLISH = Gauge(
    "stocktrack_fetcher_last_publish_timestamp_seconds", "Unix time of the last published batch"
)


class TickPublisher:
    def __init__(self, redis: aioredis.Redis, prefix: str, shards: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.shards = shards
        self._streams: dict[str, str] = {}

    def stream_for(self, symbol: str) -> str:
        stream = self._streams.get(symbol)
        if stream is None:
            stream = self._streams[symbol] = tick_stream(self.prefix, shard_for(symbol, self.shards))
        return stream

    async def publish(self, ticks: Sequence[Tick]) -> list[bytes]:
        """XADD every tick in order; returns the entry ids."""
        if not ticks:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for tick in ticks:
                pipe.xadd(self.stream_for(tick.symbol), tick.to_fields())  # type: ignore[arg-type]
            ids: list[bytes] = await pipe.execute()
        by_source: dict[str, int] = {}
        for tick in ticks:
            by_source[tick.source] = by_source.get(tick.source, 0) + 1
        for source, count in by_source.items():
            PUBLISHED.labels(source).inc(count)
        LAST_PUBLISH.set_to_current_time()
        return ids
