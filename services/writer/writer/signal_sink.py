"""Persist signals; the natural key (symbol, ts, source) makes a redelivery a no-op."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from psycopg import AsyncConnection

from stocktrack_common.messages import Signal

INSERT_SIGNAL = """
INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)
VALUES (%s, timestamptz 'epoch' + %s * interval '1 millisecond', %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (symbol, ts, source) DO NOTHING
"""


async def write_signals(conn: AsyncConnection, signals: Sequence[Signal]) -> int:
    """Insert signals; returns how many were new."""
    if not signals:
        return 0
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            INSERT_SIGNAL,
            [
                (s.symbol, s.ts, s.source, s.action, s.confidence, s.price, orjson.dumps(s.reasons).decode())
                for s in signals
            ],
        )
        return max(cur.rowcount, 0)
