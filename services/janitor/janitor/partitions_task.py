"""`partitions`: create the tick partitions of today and the next PARTITIONS_AHEAD_DAYS days.

The writer creates a missing partition on demand too, but that DDL sits on its hot path and
takes a lock; creating them ahead of time means the writer normally never meets a missing one.
"""

from __future__ import annotations

import datetime as dt

import structlog

from janitor.context import TaskContext
from janitor.report import TaskOutcome
from stocktrack_common.partitions import ensure_tick_partitions, existing_partitions, partition_name

log = structlog.get_logger(__name__)


def days_ahead(today: dt.date, ahead: int) -> list[dt.date]:
    return [today + dt.timedelta(days=i) for i in range(ahead + 1)]


async def run_partitions(ctx: TaskContext) -> TaskOutcome:
    wanted = days_ahead(ctx.today, ctx.settings.partitions_ahead_days)
    if ctx.dry_run:
        have = await existing_partitions(ctx.conn)
        created = [day for day in wanted if day not in have]
        for day in created:
            log.info("would create tick partition", partition=partition_name(day), dry_run=True)
    else:
        created = await ensure_tick_partitions(ctx.conn, wanted)
        for day in created:
            log.info("created tick partition", partition=partition_name(day))
    return TaskOutcome(
        counts={"partitions_created": len(created), "partitions_present": len(wanted) - len(created)},
        details={"created": [partition_name(d) for d in created], "through": wanted[-1].isoformat()},
    )
