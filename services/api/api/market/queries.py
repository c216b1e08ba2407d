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
        "symbol": row["symbol"],
        "ts": epoch_ms(row["ts"]),
        "price": format(price, "f"),
        "size": int(row["size"]),
        "source": row["source"],
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
    """Known: on the watch list, or with any stored data (history outlives watch-list changes)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM symbols WHERE symbol = %(s)s)"
        " OR EXISTS (SELECT 1 FROM ticks WHERE symbol = %(s)s)"
        " OR EXISTS (SELECT 1 FROM bars_1m WHERE symbol = %(s)s)"
        " OR EXISTS (SELECT 1 FROM daily_bars WHERE symbol = %(s)s)",
        {"s": symbol},
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def ticks_page(
    conn: AsyncConnection,
    symbol: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
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
        {
            "symbol": symbol,
            "start": start,
            "end": end,
            "limit": limit,
            "after_ts": after[0] if after else None,
            "after_source": after[1] if after else None,
        },
    )
    return [tick_json(r) for r in await cur.fetchall()]


async def latest_ticks(conn: AsyncConnection, symbols: list[str]) -> dict[str, dict[str, Any]]:
    """Newest tick of each symbol, one index probe per symbol (LATERAL), for cache misses."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        SELECT t.symbol, t.ts, t.price, t.size, t.source
        FROM unnest(%s::text[]) AS s(symbol)
        CROSS JOIN LATERAL (
            SELECT symbol, ts, price, size, source FROM ticks
            WHERE ticks.symbol = s.symbol ORDER BY ts DESC, source LIMIT 1
        ) AS t
        """,
        (symbols,),
    )
    return {r["symbol"]: tick_json(r) for r in await cur.fetchall()}


def symbol_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": row["symbol"],
        "name": row["name"],
        "exchange": row["exchange"],
        "currency": row["currency"],
        "active": row["active"],
        "added_at": epoch_ms(row["added_at"]),
    }


async def list_symbols(conn: AsyncConnection, include_inactive: bool) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT symbol, name, exchange, currency, active, added_at FROM symbols"
        " WHERE active OR %s ORDER BY symbol",
        (include_inactive,),
    )
    return [symbol_json(r) for r in await cur.fetchall()]


async def upsert_symbol(
    conn: AsyncConnection, symbol: str, name: str | None, exchange: str | None, currency: str
) -> tuple[dict[str, Any], bool]:
    """Add a symbol or re-activate a removed one; returns the row and whether it was new."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        INSERT INTO symbols (symbol, name, exchange, currency) VALUES (%s, %s, %s, %s)
        ON CONFLICT (symbol) DO UPDATE SET
            name = COALESCE(EXCLUDED.name, symbols.name),
            exchange = COALESCE(EXCLUDED.exchange, symbols.exchange),
            currency = EXCLUDED.currency, active = true
        RETURNING symbol, name, exchange, currency, active, added_at, (xmax = 0) AS inserted
        """,
        (symbol, name, exchange, currency),
    )
    row = await cur.fetchone()
    assert row is not None
    return symbol_json(row), bool(row["inserted"])


async def deactivate_symbol(conn: AsyncConnection, symbol: str) -> bool:
    """Soft delete: the fetcher stops watching it, its history stays queryable."""
    cur = await conn.execute("UPDATE symbols SET active = false WHERE symbol = %s AND active", (symbol,))
    return cur.rowcount == 1


def signal_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": row["symbol"],
        "ts": epoch_ms(row["ts"]),
        "source": row["source"],
        "action": row["action"],
        "confidence": float(row["confidence"]),
        "price": format(row["price"], "f"),
        "reasons": row["reasons"],
    }


_SIGNAL_COLUMNS = "symbol, ts, source, action, confidence, price, reasons"


async def latest_signal(conn: AsyncConnection, symbol: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_SIGNAL_COLUMNS} FROM signals WHERE symbol = %s ORDER BY ts DESC, source LIMIT 1", (symbol,)
    )
    row = await cur.fetchone()
    return signal_json(row) if row else None


async def signals_page(
    conn: AsyncConnection,
    symbol: str | None,
    action: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int,
    after: tuple[dt.datetime, str, str] | None,
) -> list[dict[str, Any]]:
    """Signals in (ts, symbol, source) order; that key is unique, so the keyset cursor never
    repeats or skips a row that existed when the first page was read."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""
        SELECT {_SIGNAL_COLUMNS} FROM signals
        WHERE (%(symbol)s::text IS NULL OR symbol = %(symbol)s)
          AND (%(action)s::text IS NULL OR action = %(action)s)
          AND (%(start)s::timestamptz IS NULL OR ts >= %(start)s)
          AND (%(end)s::timestamptz IS NULL OR ts < %(end)s)
          AND (%(after_ts)s::timestamptz IS NULL
               OR (ts, symbol, source) > (%(after_ts)s, %(after_symbol)s, %(after_source)s))
        ORDER BY ts, symbol, source
        LIMIT %(limit)s
        """,
        {
            "symbol": symbol,
            "action": action,
            "start": start,
            "end": end,
            "limit": limit,
            "after_ts": after[0] if after else None,
            "after_symbol": after[1] if after else None,
            "after_source": after[2] if after else None,
        },
    )
    return [signal_json(r) for r in await cur.fetchall()]
