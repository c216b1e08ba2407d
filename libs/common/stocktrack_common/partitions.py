"""Daily partitions of `ticks`: created on demand by the writer and ahead of time by the janitor."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from psycopg import AsyncConnection, sql

PARTITION_LOCK_ID = 727_002


def partition_name(day: dt.date) -> str:
    return f"ticks_{day:%Y%m%d}"


def partition_ddl(day: dt.date) -> sql.Composed:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
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
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    created: list[dt.date] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_ID,))
        have = await existing_partitions(conn)
        for day in wanted:
            if day not in have:
                await conn.execute(partition_ddl(day))
                created.append(day)
    return created
