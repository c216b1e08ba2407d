"""Cold start: the last closed bars of a symbol from PostgreSQL (`bars_1m`, rolled up if needed).

A symbol without a checkpoint would otherwise need hours of live bars before SMA(200) and the
model's features exist; the writer has been storing 1-minute bars all along, so read those.
Daily models need 200 days: `recent_days` reads `daily_bars` (split-adjusted as training
adjusts them), then days after the last stored one rolled up from `bars_1m`.
"""

from __future__ import annotations

from decimal import Decimal

from psycopg import AsyncConnection

from stocktrack_common.bars import COARSER_FROM_1M_AGGREGATES, Bar

ROLLUP_SQL = f"""
SELECT (extract(epoch FROM b) * 1000)::bigint AS bucket_ms, open, high, low, close, volume, trades,
       (extract(epoch FROM first_ts) * 1000)::bigint, (extract(epoch FROM last_ts) * 1000)::bigint
FROM (
    SELECT date_bin(make_interval(secs => %(secs)s), bucket, timestamptz 'epoch') AS b,
           {COARSER_FROM_1M_AGGREGATES}
    FROM bars_1m
    WHERE symbol = %(symbol)s AND bucket < to_timestamp(%(before_ms)s / 1000.0)
      AND bucket >= to_timestamp(%(before_ms)s / 1000.0) - make_interval(secs => %(span)s)
    GROUP BY b
    ORDER BY b DESC
    LIMIT %(limit)s
) recent ORDER BY bucket_ms
"""


async def recent_bars(
    conn: AsyncConnection,
    symbol: str,
    before_ms: int,
    interval_seconds: int,
    limit: int,
    lookback_days: int = 30,
) -> list[Bar]:
    """Up to `limit` bars of `interval_seconds` ending before `before_ms` (a bucket boundary).

    Only whole multiples of a minute can be rolled up from 1-minute bars; other intervals start
    cold. The scan is bounded to `lookback_days` so an old, idle symbol does not read years.
    """
    if limit <= 0 or interval_seconds % 60 != 0:
        return []
    cursor = await conn.execute(
        ROLLUP_SQL,
        {
            "secs": interval_seconds,
            "symbol": symbol,
            "before_ms": before_ms,
            "span": lookback_days * 86_400,
            "limit": limit,
        },
    )
    rows = await cursor.fetchall()
    return [
        Bar(
            int(r[0]),
            Decimal(r[1]),
            Decimal(r[2]),
            Decimal(r[3]),
            Decimal(r[4]),
            int(r[5]),
            int(r[6]),
            int(r[7]),
            int(r[8]),
        )
        for r in rows
    ]


DAILY_SQL = """
SELECT (extract(epoch FROM day::timestamp AT TIME ZONE 'UTC') * 1000)::bigint, open, high, low, close,
       coalesce(adj_close, close), volume
FROM daily_bars
WHERE symbol = %(symbol)s AND day < (to_timestamp(%(before_ms)s / 1000.0) AT TIME ZONE 'UTC')::date
ORDER BY day DESC
LIMIT %(limit)s
"""


async def recent_days(conn: AsyncConnection, symbol: str, before_ms: int, limit: int) -> list[Bar]:
    """Up to `limit` daily bars before the day starting at `before_ms`, oldest first."""
    if limit <= 0:
        return []
    cursor = await conn.execute(DAILY_SQL, {"symbol": symbol, "before_ms": before_ms, "limit": limit})
    days = []
    for bucket, o, h, lo, c, adj, volume in reversed(await cursor.fetchall()):
        factor = Decimal(adj) / Decimal(c) if c else Decimal(1)
        days.append(
            Bar(
                int(bucket),
                o * factor,
                h * factor,
                lo * factor,
                c * factor,
                int(volume),
                1,
                int(bucket),
                int(bucket),
            )
        )
    after = days[-1].bucket if days else -1
    minute_days = await recent_bars(conn, symbol, before_ms, 86_400, limit)
    days.extend(d for d in minute_days if d.bucket > after)
    return days[-limit:]
