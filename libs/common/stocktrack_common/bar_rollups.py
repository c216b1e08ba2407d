"""The roll-up tables of bars_1m (bars_5m, bars_15m, bars_1h, bars_1d) as code sees them.

Triggers on bars_1m only mark the 5-minute buckets a change touched (bars_rollup_dirty,
migration 0008_bars_rollups.sql); `roll_up_dirty` brings those buckets' roll-ups up to date. The
writer runs it in a loop beside its consumers (writer/rollup_worker.py), so roll-ups trail
bars_1m by about ROLLUP_INTERVAL_MS plus one round's recompute, and a writer's commit pays for a
mark, not for four roll-up merges. `recompute_rollups` recomputes a range on purpose: the
janitor's reconciliation, and any change to stored minute bars that wants its roll-ups fixed in
the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection

# Interval -> roll-up table, finest first (the order recompute writes them in).
ROLLUP_TABLES: dict[str, str] = {"5m": "bars_5m", "15m": "bars_15m", "1h": "bars_1h", "1d": "bars_1d"}

# Marks of symbols whose recompute lock is free: another roller (another writer replica) holding
# a symbol keeps its marks, so replicas share the work without waiting on each other. A seq scan
# with a LIMIT stops at `limit` claimed rows, so it tries no more locks than it needs.
_CLAIM = """
SELECT symbol, bucket, gen FROM bars_rollup_dirty
WHERE pg_try_advisory_xact_lock(727002, hashtext(symbol))
LIMIT %s
"""
# Delete the claimed marks that still carry the generation read and that no writer holds: a
# writer re-marking a bucket (its minutes may be newer than the recompute read) either holds the
# row (skipped, never waited for, so no deadlock) or has given it a new generation (no match).
_SERVED = """
DELETE FROM bars_rollup_dirty WHERE ctid IN (
    SELECT d.ctid FROM bars_rollup_dirty d
    JOIN unnest(%s::text[], %s::timestamptz[], %s::bigint[]) AS u(symbol, bucket, gen)
      ON d.symbol = u.symbol AND d.bucket = u.bucket AND d.gen = u.gen
    FOR UPDATE OF d SKIP LOCKED
)
"""


@dataclass(frozen=True, slots=True)
class RollUpRound:
    """One claim: dirty 5-minute buckets recomputed, roll-up rows that changed, marks deleted."""

    claimed: int
    changed: int
    served: int


async def roll_up_dirty(conn: AsyncConnection, limit: int = 5_000) -> RollUpRound:
    """Claim up to `limit` dirty buckets, recompute their roll-ups and delete their marks, in one transaction.

    Crash-safe by construction: claim, recompute and delete commit together or not at all. A
    mark re-set by a writer while this ran is left for the next round (`served` < `claimed`).
    """
    async with conn.transaction():
        cur = await conn.execute(_CLAIM, (limit,))
        marks = await cur.fetchall()
        if not marks:
            return RollUpRound(0, 0, 0)
        symbols, buckets, gens = (list(column) for column in zip(*marks, strict=True))
        cur = await conn.execute(
            "SELECT recompute_bar_rollups_5m(%s::text[], %s::timestamptz[])", (symbols, buckets)
        )
        row = await cur.fetchone()
        changed = int(row[0]) if row and row[0] is not None else 0
        cur = await conn.execute(_SERVED, (symbols, buckets, gens))
        return RollUpRound(len(marks), changed, cur.rowcount)


async def recompute_rollups(conn: AsyncConnection, symbol: str, start: dt.datetime, end: dt.datetime) -> int:
    """Recompute every roll-up bucket of `symbol` overlapping the minutes [start, end) from bars_1m.

    Runs in the caller's transaction (so a correction and its roll-ups commit together) and
    returns how many roll-up rows it had to change: 0 means they were already right. It waits
    for the symbol's recompute lock, so it never races the roller on the same rows.
    """
    cur = await conn.execute("SELECT recompute_bar_rollups(%s, %s, %s)", (symbol, start, end))
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0
