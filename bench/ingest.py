"""Writer ingest throughput against a raw psycopg COPY of the same rows, measured in one run.

    python bench/ingest.py [--ticks 200000] [--symbols 500] [--shards 4] [--batch 10000] [--replicas 2]

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
import gc
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from stocktrack_common.health import Heartbeat
from stocktrack_common.lifecycle import run_main
from stocktrack_common.messages import Tick
from stocktrack_common.migrations import migrate
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import create_redis
from stocktrack_common.runtime import WorkerContext
from stocktrack_common.settings import PoolSettings
from stocktrack_common.stream_names import shard_for, tick_stream
from stocktrack_devtools.servers import database_url, find_or_start
from writer.app import POOL_REUSE_UNCHECKED_SECONDS
from writer.settings import WriterConsumerSettings, WriterSettings


def symbol_names(count: int) -> list[str]:
    """The soak's universe (S000, S001, ...), spread evenly over the shards like a real watch list."""
    return [f"S{k:03d}" for k in range(count)]


def make_ticks(n: int, symbols: int = 500) -> list[Tick]:
    names = symbol_names(symbols)
    base = int(dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC).timestamp() * 1000)
    return [
        Tick(
            symbol=names[i % len(names)],
            ts=base + (i // len(names)) * 50,
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


async def _writer_main(
    redis_url: str, db_url: str, prefix: str, shards: int, batch: int, name: str, ready: Any, go: Any
) -> None:
    """One writer replica: connect, report ready, wait for the start signal, consume until stopped."""
    from writer.app import create_app

    settings = WriterSettings(
        redis_url=redis_url,  # type: ignore[arg-type]
        database_url=db_url,  # type: ignore[arg-type]
        stream_prefix=prefix,
        tick_shards=shards,
        consumer=WriterConsumerSettings(batch_size=batch),
        db=PoolSettings(pool_min=shards + 1, pool_max=shards + 1),
        consumer_name=name,
        # The bench's ticks are stamped on a fixed day (repeatable runs), which the default
        # retention would refuse as too old once that day is a month behind.
        tick_retention_days=36_500,
    )
    redis_client = await create_redis(redis_url)
    pool = await open_pg_pool(db_url, settings.db, reuse_unchecked_seconds=POOL_REUSE_UNCHECKED_SECONDS)
    await pool.wait()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ready.release()
    await asyncio.to_thread(go.wait)
    ctx = WorkerContext(
        redis=redis_client,
        pool=pool,
        heartbeat=Heartbeat(),
        stop=stop,
        consumer_name=name,
        stream_prefix=prefix,
    )
    await create_app(settings)(ctx)
    await pool.close()
    await redis_client.aclose()


def _replica(*args: Any) -> None:
    os.environ["LOG_LEVEL"] = "WARNING"
    # The event loop the writer runs on in production (uvloop), not the default one.
    run_main(lambda: _writer_main(*args))


def drained(client: redis.Redis, prefix: str, shards: int) -> bool:
    """Every tick delivered and acknowledged (the writer acks only after its commit)."""
    for k in range(shards):
        groups = [g for g in client.xinfo_groups(tick_stream(prefix, k)) if g["name"] == b"writer"]
        if not groups:
            return False
        for group in groups:
            if int(group["pending"]) or group.get("lag") not in (0, None):
                return False
            if group.get("lag") is None and client.xrange(
                tick_stream(prefix, k), min=f"({group['last-delivered-id'].decode()}", count=1
            ):
                return False
    return True


def run_writer(redis_url: str, db_url: str, prefix: str, shards: int, batch: int, replicas: int) -> float:
    """Seconds from the start signal until every tick is committed and acked.

    Replicas are forked processes sharing the consumer group, as pods would; each connects
    first and then waits, so start-up is not timed.
    """
    ctx = multiprocessing.get_context("fork")
    # The replicas inherit this process's heap (the bench's ticks): frozen, no collection in a
    # replica walks it, as in a writer started on its own (Python's gc.freeze advice for fork).
    gc.freeze()
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [
        ctx.Process(target=_replica, args=(redis_url, db_url, prefix, shards, batch, f"bench-{i}", ready, go))
        for i in range(replicas)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire(timeout=60)
    client = redis.Redis.from_url(redis_url)
    started = time.perf_counter()
    go.set()
    while not drained(client, prefix, shards):
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    client.close()
    for proc in procs:
        proc.terminate()
        proc.join(30)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument(
        "--symbols",
        type=int,
        default=500,
        help="symbols the ticks cycle through (the soak's 500; a handful skews the shards)",
    )
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument(
        "--batch",
        type=int,
        default=WriterConsumerSettings().batch_size,
        help="entries per read (default: the writer's WRITER_BATCH_SIZE)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="writer processes sharing the consumer group (the chart's default is 2)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path; medians are compared")
    args = parser.parse_args()
    servers = find_or_start(Path(tempfile.mkdtemp(prefix="stocktrack-bench-")), log=lambda m: print(f"# {m}"))
    run = uuid.uuid4().hex[:8]
    names: list[str] = []
    prefixes: list[str] = []
    try:
        ticks = make_ticks(args.ticks, args.symbols)
        per_shard = Counter(shard_for(t.symbol, args.shards) for t in ticks)
        print(f"# ticks per shard: {dict(sorted(per_shard.items()))}")
        copy_times: list[float] = []
        writer_times: list[float] = []
        for rep in range(args.repeats):
            names += [f"bench_{run}_copy{rep}", f"bench_{run}_writer{rep}"]
            prefixes.append(f"bench{run}r{rep}")
            copy_url = create_db(servers.postgres_url, names[-2])
            writer_url = create_db(servers.postgres_url, names[-1])
            copy_times.append(raw_copy(copy_url, ticks))
            preload(servers.redis_url, prefixes[-1], args.shards, ticks)
            writer_times.append(
                run_writer(
                    servers.redis_url, writer_url, prefixes[-1], args.shards, args.batch, args.replicas
                )
            )
            with psycopg.connect(writer_url) as conn:
                row = conn.execute("SELECT count(*), (SELECT sum(trades) FROM bars_1m) FROM ticks").fetchone()
            assert row is not None and row[0] == args.ticks and row[1] == args.ticks, row
            print(
                f"# run {rep + 1}: COPY {args.ticks / copy_times[-1]:,.0f}/s, writer {args.ticks / writer_times[-1]:,.0f}/s"
            )
        copy_rate = args.ticks / statistics.median(copy_times)
        writer_rate = args.ticks / statistics.median(writer_times)
        print(f"ticks                       {args.ticks} x {args.repeats} runs (medians)")
        print(f"raw binary COPY             {copy_rate:>10,.0f} ticks/s")
        print(
            f"writer x{args.replicas}, batch {args.batch:<6}  {writer_rate:>10,.0f} ticks/s  (streams -> ticks + bars_1m, acked)"
        )
        goal = "0.50x with two processes" if args.replicas >= 2 else "0.40x with one process"
        print(f"ratio writer/COPY           {writer_rate / copy_rate:.2f}x  (goal {goal})")
    finally:
        for name in names:
            drop_db(servers.postgres_url, name)
        client = redis.Redis.from_url(servers.redis_url)
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
        client.close()
        servers.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
