"""How throughput grows with replicas and shards on this machine, measured in one run.

    python bench/scale.py [--ticks 40000] [--replicas 1,2,4] [--shards 4,8,16]
                          [--rate 1000] [--clients 100] [--seconds 6] [--parts writer,streamer,redis]

Writer: for each (replicas, shards) cell the same ticks are preloaded into the shard streams
of a fresh prefix and database, then that many writer processes share the consumer group
until every tick is committed (ticks + bars_1m) and acknowledged (bench/ingest.py's harness).
Each cell prints ticks/s and its ratio to the 1-replica, first-shard-count cell of the same run.

Streamer: a publisher XADDs `--rate` ticks/s; `--clients` SSE clients are split evenly over
1, then 2 streamer processes (every replica reads every shard; clients are what scales).
Prints deliveries/s, the share delivered, publish -> receive p50/p99, and the ratio of
2 to 1 replica.

Also printed: a binary COPY of the same rows (the database's own ceiling here, and the bytes a
stored tick takes) and, where redis-benchmark is installed, the XADD/s one Redis node takes.
docs/scaling.md turns these into the sizing formulas. Uses REDIS_URL / DATABASE_URL or finds
local servers like `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import redis

# bench/ is this script's own directory: the other benches' harnesses are imported, not copied.
from ingest import create_db, drop_db, preload, raw_copy, run_writer
from stocktrack_common.messages import Tick
from stocktrack_devtools.servers import find_or_start, free_port
from stream import measure, percentiles
from writer.settings import WriterConsumerSettings


def make_ticks(n: int, symbols: int = 200) -> list[Tick]:
    """Ticks over enough symbols that every one of 16 shards gets its share (crc32 spreads them)."""
    names = [f"S{i:03d}" for i in range(symbols)]
    base = int(dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC).timestamp() * 1000)
    return [
        Tick(
            symbol=names[i % symbols],
            ts=base + (i // symbols) * 50,
            price=Decimal(f"{100 + (i * 7919 % 5000) / 100:.2f}"),
            size=(i * 31) % 900,
            source="sim",
        )
        for i in range(n)
    ]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def copy_baseline(servers_pg: str, ticks: int, run: str) -> tuple[float, float]:
    """The database's own ceiling on this machine: binary COPY of the same rows (ticks/s), and
    the bytes one stored tick takes (heap + primary key, from the partitions' sizes)."""
    name = f"bench_{run}_copy"
    url = create_db(servers_pg, name)
    try:
        elapsed = raw_copy(url, make_ticks(ticks))
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'ticks'::regclass"
            ).fetchone()
        assert row is not None
        return ticks / elapsed, float(row[0]) / ticks
    finally:
        drop_db(servers_pg, name)


def writer_matrix(
    servers_pg: str, redis_url: str, ticks: int, replicas: list[int], shards: list[int], run: str
) -> dict[tuple[int, int], float]:
    rows = make_ticks(ticks)
    batch = WriterConsumerSettings().batch_size
    rates: dict[tuple[int, int], float] = {}
    client = redis.Redis.from_url(redis_url)
    try:
        for n_shards in shards:
            for n_replicas in replicas:
                name, prefix = (
                    f"bench_{run}_s{n_shards}r{n_replicas}",
                    f"benchscale{run}s{n_shards}r{n_replicas}",
                )
                url = create_db(servers_pg, name)
                try:
                    preload(redis_url, prefix, n_shards, rows)
                    elapsed = run_writer(redis_url, url, prefix, n_shards, batch, n_replicas)
                    with psycopg.connect(url) as conn:
                        row = conn.execute("SELECT count(*) FROM ticks").fetchone()
                    assert row is not None and row[0] == ticks, row
                finally:
                    drop_db(servers_pg, name)
                    keys = list(client.scan_iter(match=f"{prefix}:*"))
                    if keys:
                        client.delete(*keys)
                rates[(n_replicas, n_shards)] = ticks / elapsed
                print(
                    f"# writer x{n_replicas}, {n_shards} shards: {ticks / elapsed:,.0f} ticks/s", flush=True
                )
    finally:
        client.close()
    return rates


def _start_streamer(redis_url: str, prefix: str, shards: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "STREAM_PREFIX": prefix,
        "TICK_SHARDS": str(shards),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "STREAMER_CLIENT_QUEUE": "100000",
    }
    proc = subprocess.Popen([sys.executable, "-m", "streamer"], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("streamer did not start") from None
            time.sleep(0.1)


def streamer_fan_out(redis_url: str, replicas: int, args: argparse.Namespace, run: str) -> dict[str, float]:
    prefix = f"benchscalestream{run}r{replicas}"
    procs = [_start_streamer(redis_url, prefix, 4) for _ in range(replicas)]
    try:
        # Every client takes every tick of stream.py's 8 default symbols; one load generator
        # process per replica, each connecting its clients to its own replica.
        fan_args = argparse.Namespace(
            symbols=0,
            per_client=0,
            clients=args.clients,
            client_procs=replicas,
            rate=args.rate,
            seconds=args.seconds,
        )
        time.sleep(0.5)  # the streamers' first reads are waiting
        fan = measure([port for _, port in procs], redis_url, prefix, fan_args)
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(15)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
    p50, p99, _ = percentiles(fan.result.latencies_ms)
    return {
        "delivered_per_s": fan.result.delivered / args.seconds,
        "share": fan.result.delivered / max(1, fan.result.expected),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
    }


def redis_xadd_capacity(redis_url: str, run: str) -> float | None:
    """XADDs/s one Redis node takes (redis-benchmark, pipelined, a tick-sized entry): the input
    the Redis Cluster sizing divides by. None where redis-benchmark is not installed."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    url = urllib.parse.urlparse(redis_url)
    key = f"benchscale{run}:xadd"
    entry = [
        "v",
        "1",
        "symbol",
        "AAPL",
        "ts",
        "1767623400000",
        "price",
        "187.25",
        "size",
        "100",
        "source",
        "sim",
    ]
    host, port = url.hostname or "127.0.0.1", str(url.port or 6379)
    command = ["XADD", key, "MAXLEN", "~", "100000", "*", *entry]
    out = subprocess.run(
        [binary, "-h", host, "-p", port, "-n", "200000", "-P", "64", "-c", "4", "-q", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    client = redis.Redis.from_url(redis_url)
    client.delete(key)
    client.close()
    match = re.search(r"([\d.]+) requests per second", out.replace(",", ""))
    return float(match.group(1)) if match else None


def print_writer(
    args: argparse.Namespace, rates: dict[tuple[int, int], float], copy_rate: float, tick_bytes: float
) -> None:
    base = rates[(args.replicas[0], args.shards[0])]
    print(
        f"\nbaseline: binary COPY of the same rows {copy_rate:,.0f} ticks/s; a stored tick takes {tick_bytes:.0f} bytes"
    )
    print(f"\nwriter ticks/s (ratio to {args.replicas[0]} replica x {args.shards[0]} shards = {base:,.0f}/s)")
    print("replicas | " + " | ".join(f"{s} shards" for s in args.shards))
    for n in args.replicas:
        cells = [f"{rates[(n, s)]:>8,.0f} ({rates[(n, s)] / base:.2f}x)" for s in args.shards]
        print(f"{n:>8} | " + " | ".join(cells))
    best = max(rates, key=lambda k: rates[k])
    print(
        f"best: {best[0]} replicas x {best[1]} shards = {rates[best] / copy_rate:.2f}x COPY;"
        f" median of cells {statistics.median(rates.values()):,.0f}/s"
    )


def print_fan_out(args: argparse.Namespace, fan: dict[int, dict[str, float]]) -> None:
    print(f"\nstreamer fan-out: {args.rate} ticks/s to {args.clients} SSE clients for {args.seconds:.0f} s")
    for n, r in fan.items():
        print(
            f"{n} replica(s): {r['delivered_per_s']:>10,.0f} deliveries/s  {100 * r['share']:.1f}% delivered"
            f"  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms"
        )
    print(
        f"ratio 2/1 replicas: deliveries {fan[2]['delivered_per_s'] / fan[1]['delivered_per_s']:.2f}x,"
        f" p99 {fan[2]['p99_ms'] / fan[1]['p99_ms']:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=40_000)
    parser.add_argument("--replicas", type=_ints, default=[1, 2, 4])
    parser.add_argument("--shards", type=_ints, default=[4, 8, 16])
    parser.add_argument("--rate", type=int, default=1000, help="streamer: ticks published per second")
    parser.add_argument("--clients", type=int, default=100, help="streamer: SSE clients in total")
    parser.add_argument("--seconds", type=float, default=6.0, help="streamer: publishing time per run")
    parser.add_argument(
        "--parts",
        type=lambda text: set(text.split(",")),
        default={"writer", "streamer", "redis"},
        help="comma-separated subset of writer,streamer,redis",
    )
    args = parser.parse_args()
    servers = find_or_start(
        Path(tempfile.mkdtemp(prefix="stocktrack-bench-scale-")), log=lambda m: print(f"# {m}")
    )
    run = uuid.uuid4().hex[:8]
    try:
        print(f"# {os.cpu_count()} CPU cores; {args.ticks} ticks per writer cell", flush=True)
        if "redis" in args.parts:
            xadds = redis_xadd_capacity(servers.redis_url, run)
            print(
                "\nredis: "
                + (
                    f"{xadds:,.0f} XADD/s of a tick-sized entry (redis-benchmark, pipelined)"
                    if xadds
                    else "redis-benchmark not installed"
                )
            )
        if "writer" in args.parts:
            copy_rate, tick_bytes = copy_baseline(servers.postgres_url, args.ticks, run)
            rates = writer_matrix(
                servers.postgres_url, servers.redis_url, args.ticks, args.replicas, args.shards, run
            )
            print_writer(args, rates, copy_rate, tick_bytes)
        if "streamer" in args.parts:
            print_fan_out(args, {n: streamer_fan_out(servers.redis_url, n, args, run) for n in (1, 2)})
    finally:
        servers.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
