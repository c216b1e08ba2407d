"""Ticks for retention tests, inserted straight into `ticks` (as a bulk load would, with no bars),
and the minute bars a correct roll-up must produce from them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg

from stocktrack_common.partitions import partition_ddl

SYMBOLS = ("AAPL", "MSFT")
MINUTES_PER_DAY = (9 * 60 + 30, 9 * 60 + 31, 15 * 60 + 59)
TICKS_PER_MINUTE = 3

Tick = tuple[str, dt.datetime, Decimal, int, str]
Bar = tuple[str, dt.datetime, Decimal, Decimal, Decimal, Decimal, int, int, dt.datetime, dt.datetime]


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def make_ticks(days: list[dt.date]) -> list[Tick]:
    ticks: list[Tick] = []
    for day_index, day in enumerate(days):
        for symbol_index, symbol in enumerate(SYMBOLS):
            for minute in MINUTES_PER_DAY:
                start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
                # Prices go up, down and up again inside a minute so open, high, low and close all differ.
                for k, offset in enumerate((Decimal("0.50"), Decimal("-0.25"), Decimal("0.10"))):
                    price = Decimal(100 + day_index + 10 * symbol_index) + offset
                    ts = start + dt.timedelta(seconds=7 * k + 1, milliseconds=symbol_index)
                    ticks.append((symbol, ts, price, 10 * (k + 1) + day_index, "sim"))
    return ticks


def expected_bars(ticks: list[Tick]) -> dict[tuple[str, dt.datetime], Bar]:
    groups: dict[tuple[str, dt.datetime], list[Tick]] = {}
    for tick in ticks:
        bucket = tick[1].replace(second=0, microsecond=0)
        groups.setdefault((tick[0], bucket), []).append(tick)
    bars = {}
    for (symbol, bucket), items in groups.items():
        items.sort(key=lambda t: t[1])
        prices = [t[2] for t in items]
        bars[(symbol, bucket)] = (
            symbol,
            bucket,
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(t[3] for t in items),
            len(items),
            items[0][1],
            items[-1][1],
        )
    return bars


def load_ticks(db_url: str, ticks: list[Tick]) -> None:
    days = sorted({t[1].date() for t in ticks})
    with psycopg.connect(db_url) as conn:
        for day in days:
            conn.execute(partition_ddl(day))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ticks (symbol, ts, price, size, source) VALUES (%s, %s, %s, %s, %s)", ticks
            )


def insert_bars(db_url: str, bars: list[Bar]) -> None:
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            bars,
        )


def fetch_bars(db_url: str) -> dict[tuple[str, dt.datetime], tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts FROM bars_1m"
        ).fetchall()
    return {(r[0], r[1]): tuple(r) for r in rows}


def tick_days_present(db_url: str) -> list[dt.date]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM ticks ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def partition_names(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ '^ticks_[0-9]{8}$'"
            " ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]
