"""SQL the api runs; every value is a bound parameter, never formatted into the text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


def epoch_ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def tick_json(row: dict[str, Any]) -> dict[str, Any]:
    price: Decimal = row["price"]
    return {
        "symbol": row["symbol"], "ts": epoch_ms(row["ts"]), "price": format(price, "f"),
        "size": int(row["size"]), "source": row["source"],
    }


async def latest_tick(conn: AsyncConnection, symbol: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT symbol, ts, price, size, source FROM ticks WHERE symbol = %s ORDER BY ts DESC, source LIMIT 1",
        (symbol,),
    )
    row = await cur.fetchone()
    return tick_json(row) if row else None


async def symbol_known(conn: AsyncConnection, symbol: str) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM symbols WHERE symbol = %s) OR EXISTS (SELECT 1 FROM ticks WHERE symbol = %s)",
        (symbol, symbol),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def ticks_page(
    conn: AsyncConnection, symbol: str, start: dt.datetime | None, end: dt.datetime | None, limit: int,
    after: tuple[dt.datetime, str] | None,
) -> list[dict[str, Any]]:
    """Ticks in time order; the keyset cursor (ts, source) is stable under concurrent inserts."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT symbol, ts, price, size, source FROM ticks
        WHERE symbol = %(symbol)s
          AND (%(start)s::timestamptz IS NULL OR ts >= %(start)s)
          AND (%(end)s::timestamptz IS NULL OR ts < %(end)s)
          AND (%(after_ts)s::timestamptz IS NULL OR (ts, source) > (%(after_ts)s, %(after_source)s))
        ORDER BY ts, source
        LIMIT %(limit)s
        """,
        {"symbol": symbol, "start": start, "end": end, "limit": limit,
         "after_ts": after[0] if after else None, "after_source": after[1] if after else None},
    )
    return [tick_json(r) for r in await cur.fetchall()]
