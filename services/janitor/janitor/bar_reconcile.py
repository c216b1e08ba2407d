"""Reconciliation of the bar roll-ups (5m, 15m, 1h, 1d) with bars_1m, the last step of `retention`.

The triggers on bars_1m mark every change and the writers' roller recomputes what they marked,
so this normally finds nothing. It is the safety net that makes "a roll-up equals rolling its
minutes up" an invariant that holds even after what no trigger saw: a roll-up row edited by
hand, a restore of one table without the others, triggers disabled for a bulk load. Each symbol
is recomputed in its own short transaction (`recompute_rollups`), so the roller skips a symbol
for one symbol's recompute at most; writers never wait for it.
"""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection

from stocktrack_common.bar_rollups import recompute_rollups

_SYMBOLS = """
SELECT DISTINCT symbol FROM bars_1m WHERE bucket >= %(since)s AND bucket < %(until)s
UNION SELECT DISTINCT symbol FROM bars_5m WHERE bucket >= %(since)s AND bucket < %(until)s
UNION SELECT DISTINCT symbol FROM bars_1d WHERE bucket >= %(since)s AND bucket < %(until)s
ORDER BY 1
"""


async def reconcile_rollups(
    conn: AsyncConnection, since: dt.datetime, until: dt.datetime, dry_run: bool
) -> tuple[int, int]:
    """(symbols checked, roll-up rows repaired) over [since, until); a dry run rolls its repairs back."""
    cur = await conn.execute(_SYMBOLS, {"since": since, "until": until})
    symbols = [row[0] for row in await cur.fetchall()]
    repaired = 0
    for symbol in symbols:
        async with conn.transaction(force_rollback=dry_run):
            repaired += await recompute_rollups(conn, symbol, since, until)
    return len(symbols), repaired
