"""Publishes tick batches to the shard streams, one pipelined round trip per batch.

A provider's trade corrections and cancels travel in the same batches, in the order the provider
sent them, and go to the amendments stream (the writer applies them by trade id).

No MAXLEN on XADD: trimming here could drop entries a consumer group has not read yet; the
janitor trims safely instead (docs/architecture.md, invariants).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from stocktrack_common.messages import Tick, TradeAmendment
from stocktrack_common.stream_names import amendments_stream, shard_for, tick_stream

Published = Tick | TradeAmendment
"""What a tick source hands the publisher: ticks, and amendments of trades it published."""

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
        self._amendments = amendments_stream(prefix)

    def stream_for(self, symbol: str) -> str:
        stream = self._streams.get(symbol)
        if stream is None:
            stream = self._streams[symbol] = tick_stream(self.prefix, shard_for(symbol, self.shards))
        return stream

    async def publish(self, messages: Sequence[Published]) -> list[bytes]:
        """XADD every tick (and amendment) in order; returns the entry ids."""
        if not messages:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                stream = self.stream_for(message.symbol) if isinstance(message, Tick) else self._amendments
                pipe.xadd(stream, message.to_fields())  # type: ignore[arg-type]
            ids: list[bytes] = await pipe.execute()
        by_source: dict[str, int] = {}
        for message in messages:
            if isinstance(message, Tick):
                by_source[message.source] = by_source.get(message.source, 0) + 1
        for source, count in by_source.items():
            PUBLISHED.labels(source).inc(count)
        LAST_PUBLISH.set_to_current_time()
        return ids
