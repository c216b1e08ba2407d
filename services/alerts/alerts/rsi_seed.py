"""Warm up an RSI from persisted 1-minute bars, so a new rule works at once, not after an hour.

Without this, RSI(14) would need 15 live minutes before its first value, after every new
rule. Wilder smoothing forgets its seed geometrically, so ten periods of history give the
same value the charts show to well within display precision.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from stocktrack_common.indicators import RSI

HISTORY_PERIODS = 10

SELECT_CLOSES = """
SELECT close FROM (
    SELECT bucket, close FROM bars_1m
    WHERE symbol = %s AND bucket < timestamptz 'epoch' + %s * interval '1 millisecond'
    ORDER BY bucket DESC LIMIT %s
) recent ORDER BY bucket
"""


async def seeded_rsi(conn: AsyncConnection, symbol: str, period: int, before_ms: int) -> RSI:
    """RSI(period) fed with the closes of the minutes before `before_ms` (fewer if history is short)."""
    rsi = RSI(period)
    cur = await conn.execute(SELECT_CLOSES, (symbol, before_ms, period * HISTORY_PERIODS))
    for (close,) in await cur.fetchall():
        rsi.update(float(close))
    return rsi
