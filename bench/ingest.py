"""Writer ingest throughput against a raw psycopg COPY of the same rows, measured in one run.

    python bench/ingest.py [--ticks 200000] [--shards 4] [--batch 2000]

Both paths land the same N ticks in a freshly migrated database with daily partitions and the
primary key. The baseline is a binary COPY straight into `ticks` (no bars, no Redis). The
writer path starts with the ticks already in the Redis shard streams and ends when every row
is committed, bars_1m is maintained and every entry is acknowledged. Prints both rates and
their ratio. Uses REDIS_URL / DATABASE_URL or finds local servers like `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from stocktrack_common.devenv import database_url, find_or_start
from stocktrack_common.health import Heartbeat
from stocktrack_common.messages import Tick
from stocktrack_common.migrations import migrate
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import create_redis
from stocktrack_common.stream_names import shard_for, tick_stream
from stocktrack_common.worker_runtime import WorkerContext

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "NFLX", "AMD", "INTC"]


def make_ticks(n: int) -> list[Tick]:
    base = int(dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC).timestamp() * 1000)
    return [
        Tick(
            symbol=SYMBOLS[i % len(SYMBOLS)],
            ts=base + (i // len(SYMBOLS)) * 50,
            price=Decimal(f"{100 + (i * 7919 % 5000) / 100:.2f}"),
            size=(i * 31) % 900,
            source="sim",
        )
        for i in range(n)
    ]


def create_db(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(server_url, name)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for day in (dt.date(2026, 1, 5), dt.date(2026, 1, 6)):
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF ticks FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(f"ticks_{day:%Y%m%d}"),
                    sql.Literal(str(day)),
                    sql.Literal(str(day + dt.timedelta(days=1))),
                )
            )
    return url


def drop_db(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def raw_copy(url: str, ticks: list[Tick]) -> float:
    rows = [
        (t.symbol, dt.datetime.fromtimestamp(t.ts / 1000, tz=dt.UTC), t.price, t.size, t.source)
        for t in ticks
    ]
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY ticks (symbol, ts, price, size, source) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["text", "timestamptz", "numeric", "int8", "text"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def preload(redis_url: str, prefix: str, shards: int, ticks: list[Tick]) -> None:
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for i, t in enumerate(ticks, 1):
        pipe.xadd(tick_stream(prefix, shard_for(t.symbol, shards)), t.to_fields())  # type: ignore[arg-type]
        if i % 5000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()


async def run_writer(redis_url: str, db_url: str, prefix: str, shards: int, batch: int, n: int) -> float:
    from writer.app import ROWS, create_app
    from writer.settings import WriterSettings

    settings = WriterSettings(
        redis_url=redis_url,
        database_url=db_url,
        stream_prefix=prefix,  # type: ignore[arg-type]
        tick_shards=shards,
        writer_batch_size=batch,
        consumer_name="bench",
    )
    redis_client = await create_redis(redis_url)
    pool = await open_pg_pool(db_url, min_size=2, max_size=4)
    stop = asyncio.Event()
    main = create_app(settings)
    started = time.perf_counter()
    task = asyncio.create_task(
        main(WorkerContext(redis=redis_client, pool=pool, heartbeat=Heartbeat(), stop=stop))
    )
    # Poll the writer's own committed-rows counter: a count(*) loop would compete for the CPU.
    while ROWS.labels("ticks")._value.get() < n:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await pool.close()
    await redis_client.aclose()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    servers = find_or_start(Path(tempfile.mkdtemp(prefix="stocktrack-bench-")), log=lambda m: print(f"# {m}"))
    run = uuid.uuid4().hex[:8]
    prefix = f"bench{run}"
    names = [f"bench_{run}_copy", f"bench_{run}_writer"]
    try:
        ticks = make_ticks(args.ticks)
        copy_url = create_db(servers.postgres_url, names[0])
        writer_url = create_db(servers.postgres_url, names[1])
        copy_s = raw_copy(copy_url, ticks)
        preload(servers.redis_url, prefix, args.shards, ticks)
        writer_s = asyncio.run(
            run_writer(servers.redis_url, writer_url, prefix, args.shards, args.batch, args.ticks)
        )
        with psycopg.connect(writer_url) as conn:
            row = conn.execute("SELECT count(*), (SELECT sum(trades) FROM bars_1m) FROM ticks").fetchone()
        assert row is not None and row[0] == args.ticks and row[1] == args.ticks, row
        copy_rate, writer_rate = args.ticks / copy_s, args.ticks / writer_s
        print(f"ticks                     {args.ticks}")
        print(f"raw binary COPY           {copy_rate:>10,.0f} ticks/s  ({copy_s:.2f} s)")
        print(f"writer (streams->PG+bars) {writer_rate:>10,.0f} ticks/s  ({writer_s:.2f} s)")
        print(f"ratio writer/COPY         {writer_rate / copy_rate:.2f}x  (floor 0.30x)")
    finally:
        for name in names:
            drop_db(servers.postgres_url, name)
        client = redis.Redis.from_url(servers.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
        servers.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
