"""`retention`: drop old tick partitions (after rolling their ticks up into minute bars) and
delete old rows of the other time-series tables in bounded batches, then reconcile the recent
bar roll-ups with bars_1m.

Tick retention counts whole UTC days: with TICK_RETENTION_DAYS=30 the partitions of today and
the 29 days before it stay. A day whose minute bars are themselves past BAR_RETENTION_DAYS is
not rolled up, since those bars would be deleted a moment later. Deleting minute bars marks
their buckets for the writers' roller (triggers on bars_1m); the roll-up tables are cut at the
same day here rather than left to it, so old roll-ups go with their minutes in this run.
"""

from __future__ import annotations

import datetime as dt
import time

import structlog

from janitor.bar_reconcile import reconcile_rollups
from janitor.batched_delete import count_older, delete_older
from janitor.context import TaskContext
from janitor.report import TaskOutcome
from janitor.tick_partitions import (
    count_missing_bars,
    drop_tick_partition,
    list_tick_partitions,
    partitions_older_than,
    roll_up_missing_bars,
)
from stocktrack_common.bar_rollups import ROLLUP_TABLES
from stocktrack_common.settings import first_retained_day

log = structlog.get_logger(__name__)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def run_retention(ctx: TaskContext) -> TaskOutcome:
    outcome = TaskOutcome()
    settings = ctx.settings
    first_tick_day = first_retained_day(ctx.today, settings.tick_retention_days)
    first_bar_day = first_retained_day(ctx.today, settings.bar_retention_days)
    outcome.details["ticks_kept_from"] = first_tick_day.isoformat()
    outcome.details["bars_kept_from"] = first_bar_day.isoformat()

    await _drop_old_tick_partitions(ctx, outcome, first_tick_day, first_bar_day)
    await _delete_old_rows(ctx, outcome, "bars_1m", "bucket", day_start(first_bar_day), "bars_deleted")
    # An amendment only matters while its trade's tick can still be stored or redelivered.
    await _delete_old_rows(
        ctx, outcome, "trade_amendments", "ts", day_start(first_tick_day), "trade_amendments_deleted"
    )
    outcome.counts["rollup_bars_deleted"] = 0
    for table in ROLLUP_TABLES.values():
        await _delete_old_rows(ctx, outcome, table, "bucket", day_start(first_bar_day), "rollup_bars_deleted")
    if settings.signal_retention_days is not None:
        cutoff = day_start(first_retained_day(ctx.today, settings.signal_retention_days))
        await _delete_old_rows(ctx, outcome, "signals", "ts", cutoff, "signals_deleted")
    if settings.daily_bar_retention_days is not None:
        cutoff_day = first_retained_day(ctx.today, settings.daily_bar_retention_days)
        await _delete_old_rows(ctx, outcome, "daily_bars", "day", cutoff_day, "daily_bars_deleted")
    if settings.rollup_reconcile_days:
        since = day_start(max(first_retained_day(ctx.today, settings.rollup_reconcile_days), first_bar_day))
        until = day_start(ctx.today + dt.timedelta(days=1))
        symbols, repaired = await reconcile_rollups(ctx.conn, since, until, ctx.dry_run)
        log.info("reconciled bar roll-ups", since=since.isoformat(), symbols=symbols, repaired=repaired)
        outcome.counts["rollup_bars_repaired"] = repaired
    return outcome


async def _drop_old_tick_partitions(
    ctx: TaskContext, outcome: TaskOutcome, first_tick_day: dt.date, first_bar_day: dt.date
) -> None:
    old = partitions_older_than(await list_tick_partitions(ctx.conn), first_tick_day)
    outcome.counts["partitions_dropped"] = 0
    outcome.counts["bars_rolled_up"] = 0
    dropped: list[str] = []
    for partition in old:
        wants_bars = partition.day >= first_bar_day
        if ctx.dry_run:
            bars, ticks = await count_missing_bars(ctx.conn, partition.name) if wants_bars else (0, 0)
            log.info(
                "would drop tick partition",
                partition=partition.name,
                bars_to_roll_up=bars,
                ticks_behind_them=ticks,
                dry_run=True,
            )
            outcome.add("bars_rolled_up", bars)
            outcome.add("partitions_dropped")
            dropped.append(partition.name)
            continue
        started = time.perf_counter()
        rolled = await roll_up_missing_bars(ctx.conn, partition.name) if wants_bars else 0
        rolled_s = time.perf_counter() - started
        await drop_tick_partition(ctx.conn, partition)
        log.info(
            "dropped tick partition",
            partition=partition.name,
            bars_rolled_up=rolled,
            roll_up_s=round(rolled_s, 3),
            duration_s=round(time.perf_counter() - started, 3),
        )
        outcome.add("bars_rolled_up", rolled)
        outcome.add("partitions_dropped")
        dropped.append(partition.name)
    outcome.details["partitions"] = dropped


async def _delete_old_rows(
    ctx: TaskContext, outcome: TaskOutcome, table: str, column: str, cutoff: dt.date | dt.datetime, count: str
) -> None:
    if ctx.dry_run:
        rows = await count_older(ctx.conn, table, column, cutoff)
        log.info("would delete old rows", table=table, rows=rows, older_than=cutoff.isoformat(), dry_run=True)
        outcome.add(count, rows)
        return
    started = time.perf_counter()
    rows, batches = await delete_older(ctx.conn, table, column, cutoff, ctx.settings.retention_batch_size)
    log.info(
        "deleted old rows",
        table=table,
        rows=rows,
        batches=batches,
        older_than=cutoff.isoformat(),
        duration_s=round(time.perf_counter() - started, 3),
    )
    outcome.add(count, rows)
