"""Wires the writer: consumers of group 'writer' (tick shards, signals, trade amendments) and the
bar roll-up worker over one pool."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Counter, Histogram

from stocktrack_common.consumer import Delivery
from stocktrack_common.gc_tuning import tune_collector
from stocktrack_common.messages import Signal, TickRow, TradeAmendment, decode_amendment
from stocktrack_common.runtime import WorkerContext, WorkerMain
from stocktrack_common.stream_names import (
    WRITER_GROUP,
    amendments_stream,
    latest_quotes_key,
    tick_streams,
)
from writer import trade_amendments
from writer.latest_quotes import LatestQuotes
from writer.rollup_worker import run_rollups
from writer.settings import WriterSettings
from writer.signal_sink import write_signals
from writer.tick_sink import RetainedTicks, TickSink

log = structlog.get_logger(__name__)

ROWS = Counter("stocktrack_writer_rows_total", "Rows inserted by table", ["table"])
DUPLICATES = Counter("stocktrack_writer_duplicates_total", "Redelivered rows skipped by table", ["table"])
AMENDED = Counter(
    "stocktrack_writer_trade_amendments_total",
    "Trade amendments: recorded (new), redelivered (already recorded), ticks changed, bars rebuilt",
    ["outcome"],
)
COMMIT_SECONDS = Histogram(
    "stocktrack_writer_commit_seconds",
    "Time to persist one batch",
    ["table"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# A connection returned this recently is handed out again without the pool's check round trip:
# at a steady tick rate every batch would otherwise pay one to learn the last batch succeeded.
POOL_REUSE_UNCHECKED_SECONDS = 1.0


# Each batch allocates tens of thousands of short-lived objects and none of them form cycles, so
# the default first threshold (700) ran the collector hundreds of times per batch for nothing.
GC_THRESHOLDS = (1_000_000, 50, 100)


def create_app(settings: WriterSettings) -> WorkerMain:
    """Return the writer's main loop; the worker runtime supplies Redis, the pool and the stop event."""

    async def main(ctx: WorkerContext) -> None:
        tune_collector(GC_THRESHOLDS)
        sink = TickSink()
        latest = LatestQuotes(ctx.redis, latest_quotes_key(settings.stream_prefix))

        async def handle_ticks(batch: list[Delivery[TickRow]]) -> None:
            with COMMIT_SECONDS.labels("ticks").time():
                async with ctx.db.connection() as conn:
                    result = await sink.write(conn, [d.message for d in batch])
            ROWS.labels("ticks").inc(result.inserted)
            DUPLICATES.labels("ticks").inc(result.duplicates)
            await latest.update(result.newest)
            _count_applied(result.amended)

        async def handle_amendments(batch: list[Delivery[TradeAmendment]]) -> None:
            with COMMIT_SECONDS.labels("trade_amendments").time():
                async with ctx.db.connection() as conn:
                    new, applied = await trade_amendments.write(conn, [d.message for d in batch])
            AMENDED.labels("recorded").inc(new)
            AMENDED.labels("redelivered").inc(len(batch) - new)
            _count_applied(applied)

        async def handle_signals(batch: list[Delivery[Signal]]) -> None:
            with COMMIT_SECONDS.labels("signals").time():
                async with ctx.db.connection() as conn:
                    inserted = await write_signals(conn, [d.message for d in batch])
            ROWS.labels("signals").inc(inserted)
            DUPLICATES.labels("signals").inc(len(batch) - inserted)

        retained = RetainedTicks(settings.tick_retention_days)
        # One consumer per shard: while one batch waits on PostgreSQL, the next shard's batch is
        # read and decoded, so the database and the Python side work at the same time.
        tick_consumers = [
            ctx.stream_consumer(
                settings.consumer,
                streams=[stream],
                group=WRITER_GROUP,
                handler=handle_ticks,
                decode=retained.decode,
                decode_flat=retained.decode_flat,
                decode_read=retained.decode_read,
            )
            for stream in tick_streams(settings.stream_prefix, settings.tick_shards)
        ]
        signal_consumer = ctx.signal_consumer(settings.consumer, group=WRITER_GROUP, handler=handle_signals)
        amendment_consumer = ctx.stream_consumer(
            settings.consumer,
            streams=[amendments_stream(settings.stream_prefix)],
            group=WRITER_GROUP,
            handler=handle_amendments,
            decode=decode_amendment,
        )
        log.info("writer consuming", shards=settings.tick_shards, consumer=settings.consumer_name)
        await asyncio.gather(
            *(c.run(ctx.stop) for c in tick_consumers),
            signal_consumer.run(ctx.stop),
            amendment_consumer.run(ctx.stop),
            run_rollups(ctx.db, ctx.stop, ctx.heartbeat, settings.rollup_interval_ms),
        )

    return main


def _count_applied(applied: trade_amendments.Applied) -> None:
    AMENDED.labels("ticks_changed").inc(applied.ticks)
    AMENDED.labels("bars_rebuilt").inc(applied.bars)
