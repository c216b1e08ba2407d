"""What the bar roll-up tables should hold: bars_1m rolled up per query, the way the api used to.

Compared as text (numeric's exact digits and scale, what the api serves), both ways, so a
missing, a stray and a wrong row all show.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from stocktrack_common.bar_rollups import ROLLUP_TABLES, roll_up_dirty
from stocktrack_common.bars import COARSER_FROM_1M_AGGREGATES

STEPS = {"5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour", "1d": "1 day"}
_TEXT = "symbol, bucket, open::text, high::text, low::text, close::text, volume, trades, first_ts, last_ts"
_REFERENCE = f"""
SELECT {_TEXT} FROM (
    SELECT symbol, date_bin(%(step)s::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           {COARSER_FROM_1M_AGGREGATES}
    FROM bars_1m GROUP BY 1, 2
) AS rolled
"""


async def rollup_differences(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Per interval, the rows in which its roll-up table and the reference disagree (empty: equal)."""
    differences: dict[str, list[tuple[Any, ...]]] = {}
    for interval, table in ROLLUP_TABLES.items():
        stored = f"SELECT {_TEXT} FROM {table}"
        cur = await conn.execute(
            f"({stored} EXCEPT {_REFERENCE}) UNION ALL ({_REFERENCE} EXCEPT {stored}) ORDER BY 1, 2",
            {"step": STEPS[interval]},
        )
        differences[interval] = await cur.fetchall()
    return differences


async def rollup_counts(conn: AsyncConnection) -> dict[str, int]:
    counts = {}
    for interval, table in ROLLUP_TABLES.items():
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        row = await cur.fetchone()
        counts[interval] = int(row[0]) if row else 0
    return counts


NO_DIFFERENCES: dict[str, list[tuple[Any, ...]]] = {interval: [] for interval in ROLLUP_TABLES}


async def roll_up(conn: AsyncConnection) -> int:
    """What the writer's roller does, run to the end now: the dirty buckets claimed (0: none were)."""
    claimed = 0
    while done := (await roll_up_dirty(conn)).claimed:
        claimed += done
    return claimed


async def dirty_marks(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM bars_rollup_dirty")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
