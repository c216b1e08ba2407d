"""Dropping old tick partitions beside DELETEing the same rows, on the same data, in one run.

Creates a scratch database, loads N ticks (5 million by default) spread evenly over 60 daily
partitions with INSERT ... SELECT generate_series, then times the janitor's way of removing the
oldest 30 days (DETACH PARTITION CONCURRENTLY + DROP TABLE per day). It then rebuilds exactly
the same data and times a DELETE of the same rows, and the VACUUM that DELETE needs before the
space can be reused. The roll-up of those days into minute bars, which the retention task does
before dropping, is timed too, separately. The scratch database is dropped at the end.

Usage: python bench/retention.py [--ticks N] [--days 60] [--drop-days 30] [--server-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time

import psycopg
from psycopg import AsyncConnection, sql

from janitor.tick_partitions import drop_tick_partition, list_tick_partitions, roll_up_missing_bars
from stocktrack_common.migrations import migrate
from stocktrack_common.partitions import partition_ddl
from stocktrack_devtools.servers import database_url

SYMBOLS = 20

LOAD = """
INSERT INTO ticks (symbol, ts, price, size, source)
SELECT 'SYM' || (g %% {symbols}),
       %(start)s::timestamptz + g * %(step)s::interval,
       round((100 + (g %% 1000) / 100.0)::numeric, 2),
       g %% 500,
       'bench'
FROM generate_series(0, %(n)s - 1) AS g
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--drop-days", type=int, default=30)
    parser.add_argument(
        "--server-url",
        default=os.environ.get("PG_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    return parser.parse_args()


async def load(conn: AsyncConnection, first_day: dt.date, days: int, ticks: int) -> float:
    """(Re)create the partitions and fill them; returns the seconds taken."""
    started = time.perf_counter()
    await conn.execute("TRUNCATE ticks, bars_1m")
    for i in range(days):
        await conn.execute(partition_ddl(first_day + dt.timedelta(days=i)))
    step = dt.timedelta(days=days) / ticks
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    await conn.execute(
        sql.SQL(LOAD).format(symbols=sql.Literal(SYMBOLS)), {"start": start, "step": step, "n": ticks}
    )
    await conn.execute("VACUUM (ANALYZE) ticks")
    await conn.execute("CHECKPOINT")
    return time.perf_counter() - started


async def count(conn: AsyncConnection, query: str, *params: object) -> int:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def bench(url: str, args: argparse.Namespace) -> None:
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=args.days - 1)
    cutoff_day = first_day + dt.timedelta(days=args.drop_days)
    cutoff = dt.datetime.combine(cutoff_day, dt.time(), tzinfo=dt.UTC)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SET synchronous_commit = off")
        load_s = await load(conn, first_day, args.days, args.ticks)
        total = await count(conn, "SELECT count(*) FROM ticks")
        old_rows = await count(conn, "SELECT count(*) FROM ticks WHERE ts < %s", cutoff)
        print(
            f"loaded {total:,} ticks over {args.days} days in {load_s:.1f} s; "
            f"removing the oldest {args.drop_days} days = {old_rows:,} ticks"
        )

        old = [p for p in await list_tick_partitions(conn) if p.day < cutoff_day]
        started = time.perf_counter()
        bars = sum([await roll_up_missing_bars(conn, p.name) for p in old])
        rollup_s = time.perf_counter() - started
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        for partition in old:
            await drop_tick_partition(conn, partition)
        drop_s = time.perf_counter() - started
        left = await count(conn, "SELECT count(*) FROM ticks")
        assert left == total - old_rows, (left, total, old_rows)

        await load(conn, first_day, args.days, args.ticks)
        assert await count(conn, "SELECT count(*) FROM ticks WHERE ts < %s", cutoff) == old_rows
        started = time.perf_counter()
        await conn.execute("DELETE FROM ticks WHERE ts < %s", (cutoff,))
        delete_s = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("VACUUM ticks")
        vacuum_s = time.perf_counter() - started
        assert await count(conn, "SELECT count(*) FROM ticks") == total - old_rows

    print(f"roll-up into bars_1m (done before the drop): {rollup_s:8.2f} s  ({bars:,} bars)")
    print(f"drop {len(old)} partitions (detach concurrently + drop): {drop_s:8.3f} s")
    print(
        f"DELETE of the same {old_rows:,} rows:              {delete_s:8.3f} s  "
        f"({delete_s / drop_s:,.1f}x the drop)"
    )
    print(
        f"  + VACUUM to make that space reusable:     {vacuum_s:8.3f} s  "
        f"(DELETE + VACUUM = {(delete_s + vacuum_s) / drop_s:,.1f}x the drop)"
    )


def main() -> None:
    args = parse_args()
    name = f"stocktrack_bench_retention_{os.getpid()}"
    with psycopg.connect(args.server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = database_url(args.server_url, name)
        migrate(url)
        asyncio.run(bench(url, args))
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
