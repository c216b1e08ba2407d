"""`vacuum`: VACUUM (ANALYZE) the tables that change every day and report their bloat estimates.

Autovacuum handles steady churn, but the batched retention deletes leave a burst of dead rows in
bars_1m at once, and fresh tick partitions need statistics early in the day. The bloat estimate
is dead tuples / all tuples (from pg_stat_user_tables) times the table size: cheap, needs no
extension, and good enough to tell whether bloat is growing week over week.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass

import structlog
from psycopg import AsyncConnection, sql

from janitor.context import TaskContext
from janitor.report import TaskOutcome
from stocktrack_common.partitions import partition_name

log = structlog.get_logger(__name__)

HOT_TABLES = ("bars_1m", "signals", "daily_bars", "models")


@dataclass(frozen=True)
class TableBloat:
    table: str
    size_bytes: int
    live_tuples: int
    dead_tuples: int

    @property
    def dead_ratio(self) -> float:
        total = self.live_tuples + self.dead_tuples
        return self.dead_tuples / total if total else 0.0

    @property
    def estimated_bloat_bytes(self) -> int:
        return int(self.size_bytes * self.dead_ratio)

    def as_log(self) -> dict[str, object]:
        return {
            **asdict(self),
            "dead_ratio": round(self.dead_ratio, 4),
            "estimated_bloat_bytes": self.estimated_bloat_bytes,
        }


async def table_bloat(conn: AsyncConnection, table: str) -> TableBloat | None:
    """None when the table does not exist (a partition of a day without ticks yet)."""
    cur = await conn.execute(
        """
        SELECT pg_table_size(c.oid), coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0)
        FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.oid = to_regclass(%s)
        """,
        (table,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return TableBloat(table, int(row[0]), int(row[1]), int(row[2]))


def vacuum_targets(today: dt.date, recent_partitions: int) -> list[str]:
    """Hot tables plus the newest tick partitions (never the parent `ticks`, which would scan them all)."""
    recent = [partition_name(today - dt.timedelta(days=i)) for i in range(recent_partitions)]
    return [*HOT_TABLES, *recent]


async def run_vacuum(ctx: TaskContext) -> TaskOutcome:
    outcome = TaskOutcome(counts={"tables_vacuumed": 0, "estimated_bloat_bytes": 0, "dead_tuples_removed": 0})
    tables: list[dict[str, object]] = []
    for table in vacuum_targets(ctx.today, ctx.settings.vacuum_recent_partitions):
        before = await table_bloat(ctx.conn, table)
        if before is None:
            continue
        outcome.add("estimated_bloat_bytes", before.estimated_bloat_bytes)
        entry = before.as_log()
        if ctx.dry_run:
            log.info("would vacuum table", **entry, dry_run=True)
            tables.append(entry)
            continue
        started = time.perf_counter()
        await ctx.conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        after = await table_bloat(ctx.conn, table)
        entry["dead_tuples_after"] = after.dead_tuples if after else 0
        entry["duration_s"] = round(time.perf_counter() - started, 3)
        removed = max(0, before.dead_tuples - (after.dead_tuples if after else 0))
        outcome.add("dead_tuples_removed", removed)
        outcome.add("tables_vacuumed")
        log.info("vacuumed table", **entry)
        tables.append(entry)
    outcome.details["tables"] = tables
    return outcome
