"""The daily partitions of `ticks` as the janitor sees them: list, roll up into bars, detach and drop.

Partitions are found by name (ticks_YYYYMMDD, the convention of stocktrack_common.partitions);
tables with other names are never touched. A partition left half-detached by a crashed run,
or detached but not yet dropped, is found too, so a rerun finishes the job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from stocktrack_common.bars import BUCKET_1M_SQL, roll_up_1m_sql

_NAME_RE = "^ticks_[0-9]{8}$"

_BUCKET = BUCKET_1M_SQL.format(ts="t.ts")

# The partition's ticks whose minute has no bar in bars_1m yet (a bar the writer stored already
# counts all its minute's ticks), folded by the one bar model, so a rolled-up bar equals the one
# the writer would have built.
ROLL_UP_MISSING = f"""
WITH missing AS (
    SELECT t.symbol, t.ts, t.price, t.size FROM {{partition}} t
    WHERE NOT EXISTS (SELECT 1 FROM bars_1m b WHERE b.symbol = t.symbol AND b.bucket = {_BUCKET})
)""" + roll_up_1m_sql("missing", merge=False)

COUNT_MISSING = f"""
SELECT count(*), coalesce(sum(n), 0) FROM (
    SELECT count(*) AS n FROM {{partition}} t
    WHERE NOT EXISTS (SELECT 1 FROM bars_1m b WHERE b.symbol = t.symbol AND b.bucket = {_BUCKET})
    GROUP BY t.symbol, {_BUCKET}
) missing
"""


@dataclass(frozen=True)
class TickPartition:
    name: str
    day: dt.date
    attached: bool
    detach_pending: bool


def _day(name: str) -> dt.date:
    return dt.datetime.strptime(name, "ticks_%Y%m%d").date()


async def list_tick_partitions(conn: AsyncConnection) -> list[TickPartition]:
    """Attached partitions of `ticks` and stray detached ticks_YYYYMMDD tables, oldest first."""
    cur = await conn.execute(
        """
        SELECT c.relname, i.inhrelid IS NOT NULL, coalesce(i.inhdetachpending, false)
        FROM pg_class c
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'ticks'::regclass
        WHERE c.relkind = 'r' AND c.relname ~ %s
          AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND (i.inhrelid IS NOT NULL OR NOT c.relispartition)
        """,
        (_NAME_RE,),
    )
    found = []
    for name, attached, pending in await cur.fetchall():
        try:
            day = _day(name)
        except ValueError:
            continue
        found.append(TickPartition(name, day, bool(attached), bool(pending)))
    found.sort(key=lambda p: p.day)
    return found


async def count_missing_bars(conn: AsyncConnection, partition: str) -> tuple[int, int]:
    """(bars that a roll-up would add, ticks behind them) — what a dry run reports."""
    cur = await conn.execute(sql.SQL(COUNT_MISSING).format(partition=sql.Identifier(partition)))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def roll_up_missing_bars(conn: AsyncConnection, partition: str) -> int:
    """Insert the partition's missing minute bars in one transaction; returns how many were added."""
    async with conn.transaction():
        cur = await conn.execute(sql.SQL(ROLL_UP_MISSING).format(partition=sql.Identifier(partition)))
        return cur.rowcount


async def drop_tick_partition(conn: AsyncConnection, partition: TickPartition) -> None:
    """Detach without blocking writers and readers of `ticks`, then drop the detached table.

    A plain DROP of a partition takes an ACCESS EXCLUSIVE lock on `ticks` itself, queueing every
    insert and query behind it; DETACH ... CONCURRENTLY only needs SHARE UPDATE EXCLUSIVE on the
    parent. It must run outside a transaction block, which the autocommit connection gives.
    """
    name = sql.Identifier(partition.name)
    if partition.attached:
        mode = sql.SQL("FINALIZE") if partition.detach_pending else sql.SQL("CONCURRENTLY")
        await conn.execute(sql.SQL("ALTER TABLE ticks DETACH PARTITION {} {}").format(name, mode))
    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))


def partitions_older_than(partitions: list[TickPartition], first_kept: dt.date) -> list[TickPartition]:
    return [p for p in partitions if p.day < first_kept]
