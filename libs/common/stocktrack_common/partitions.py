"""Daily partitions of `ticks`: created on demand by the writer and ahead of time by the janitor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from psycopg import AsyncConnection, sql

PARTITION_LOCK_ID = 727_002


class PartitionError(Exception):
    """A partition cannot be made ready; the message says what an operator must do."""


def partition_name(day: dt.date) -> str:
    return f"ticks_{day:%Y%m%d}"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def partition_ddl(day: dt.date) -> sql.Composed:
    start, end = day_bounds(day)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF ticks FOR VALUES FROM ({}) TO ({})").format(
        sql.Identifier(partition_name(day)), sql.Literal(start), sql.Literal(end)
    )


async def existing_partitions(conn: AsyncConnection) -> set[dt.date]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'ticks'"
    )
    days = set()
    for (name,) in await cur.fetchall():
        try:
            days.add(dt.datetime.strptime(name, "ticks_%Y%m%d").date())
        except ValueError:
            continue
    return days


async def ensure_tick_partitions(conn: AsyncConnection, days: Iterable[dt.date]) -> list[dt.date]:
    """Create missing daily partitions; returns the days created. Commits its own transaction.

    The advisory lock serialises creators (writers, janitor) so two never race on the same DDL.
    A table that merely carries a partition's name would make `CREATE TABLE IF NOT EXISTS` a silent
    no-op while every insert for that day keeps failing, so the result is verified, not assumed.
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    attempted: list[dt.date] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_ID,))
        have = await existing_partitions(conn)
        for day in wanted:
            if day not in have:
                await conn.execute(partition_ddl(day))
                attempted.append(day)
        attached = await existing_partitions(conn) if attempted else have
    # The days that did get a partition stay committed; the stray ones are reported after.
    stray = [day for day in attempted if day not in attached]
    if stray:
        raise PartitionError(_stray_message(stray))
    return attempted


def _stray_message(days: list[dt.date]) -> str:
    day = days[0]
    start, end = day_bounds(day)
    names = ", ".join(partition_name(d) for d in days)
    return (
        f"table(s) {names} exist but are not partitions of ticks; move them away "
        f"(ALTER TABLE {partition_name(day)} RENAME TO ...) or attach them "
        f"(ALTER TABLE ticks ATTACH PARTITION {partition_name(day)} FOR VALUES FROM ('{start.isoformat()}') "
        f"TO ('{end.isoformat()}')), then run `stocktrack janitor partitions` again"
    )
