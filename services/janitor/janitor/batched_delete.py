"""DELETE of old rows in bounded batches, each its own short transaction.

One huge DELETE holds its locks and its snapshot for the whole run, bloats WAL in one burst and
loses all progress if interrupted; small batches let autovacuum and replicas keep up and a rerun
simply continues.
"""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection, sql

_DELETE_BATCH = """
DELETE FROM {table} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM {table} WHERE {column} < %s LIMIT %s
))
"""


async def count_older(conn: AsyncConnection, table: str, column: str, cutoff: dt.date | dt.datetime) -> int:
    cur = await conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} < %s").format(
            sql.Identifier(table), sql.Identifier(column)
        ),
        (cutoff,),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def delete_older(
    conn: AsyncConnection, table: str, column: str, cutoff: dt.date | dt.datetime, batch_size: int
) -> tuple[int, int]:
    """Delete rows with `column < cutoff`; returns (rows deleted, batches run)."""
    statement = sql.SQL(_DELETE_BATCH).format(table=sql.Identifier(table), column=sql.Identifier(column))
    deleted = batches = 0
    while True:
        async with conn.transaction():
            cur = await conn.execute(statement, (cutoff, batch_size))
        batches += 1
        deleted += cur.rowcount
        if cur.rowcount < batch_size:
            return deleted, batches
