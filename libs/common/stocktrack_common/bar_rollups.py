"""The roll-up tables of bars_1m (bars_5m, bars_15m, bars_1h, bars_1d) as code sees them.

Triggers on bars_1m keep them (migration 0008_bars_rollups.sql): inserted minutes and minutes
that only grew are merged in as deltas by the one bar model's merge, anything else recomputes
the buckets holding it. What is left for code is to recompute on purpose: the janitor's
reconciliation, and any change to stored minute bars that wants its roll-ups fixed in the same
transaction without relying on how it changed them.
"""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection

# Interval -> roll-up table, finest first (the order the triggers and recompute lock them in).
ROLLUP_TABLES: dict[str, str] = {"5m": "bars_5m", "15m": "bars_15m", "1h": "bars_1h", "1d": "bars_1d"}


async def recompute_rollups(conn: AsyncConnection, symbol: str, start: dt.datetime, end: dt.datetime) -> int:
    """Recompute every roll-up bucket of `symbol` overlapping the minutes [start, end) from bars_1m.

    Runs in the caller's transaction (so a correction and its roll-ups commit together) and
    returns how many roll-up rows it had to change: 0 means they were already right. Concurrent
    writers are safe: it takes the symbol's roll-up lock exclusively, the triggers' delta merge
    takes it shared.
    """
    cur = await conn.execute("SELECT recompute_bar_rollups(%s, %s, %s)", (symbol, start, end))
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0
