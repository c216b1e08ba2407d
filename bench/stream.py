"""Tick published -> received latency through the streamer, fanned out to 100 SSE clients.

A publisher XADDs ticks at a fixed rate (2,000/s by default) across the tick shards, stamping
each with a unique `ts` and remembering when it was published; 100 SSE clients read the stream
and note when each tick arrives. The streamer runs as its own process, as in production. Prints
p50/p99/max of publish -> receive over every (tick, client) pair, and how many arrived.

Usage: python bench/stream.py [--rate 2000] [--clients 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import redis
import redis.asyncio as aioredis

from stocktrack_common.stream_names import shard_for, tick_stream
from stocktrack_devtools.servers import find_or_start, free_port

SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "AMD")
SHARDS = 4
_TS = re.compile(rb'"ts":(\d+)')


async def client(
    port: int,
    published: dict[int, float],
    latencies: list[float],
    ready: asyncio.Event,
    counter: list[int],
    stop: asyncio.Event,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/stream?types=ticks HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
    await writer.drain()
    counter[0] += 1
    if counter[0] == counter[1]:
        ready.set()
    tail = b""
    while not stop.is_set():
        chunk = await reader.read(262_144)
        if not chunk:
            break
        now = time.time()
        data = tail + chunk
        cut = data.rfind(b"\n\n")
        if cut < 0:
            tail = data
            continue
        tail = data[cut + 2 :]
        for match in _TS.findall(data[:cut]):
            sent = published.get(int(match))
            if sent is not None:
                latencies.append(now - sent)
    writer.close()


async def publish(url: str, prefix: str, rate: int, seconds: float, published: dict[int, float]) -> int:
    client = aioredis.Redis.from_url(url)
    interval = 0.005
    per_tick = rate * interval
    sent = 0
    start = time.perf_counter()
    base_ts = int(time.time() * 1000)  # unique, increasing ts per tick (runs ahead of the clock; only a key)
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) / interval * per_tick) + 1
        pipe = client.pipeline(transaction=False)
        stamp = time.time()
        while sent < due:
            symbol = SYMBOLS[sent % len(SYMBOLS)]
            ts = base_ts + sent
            pipe.xadd(
                tick_stream(prefix, shard_for(symbol, SHARDS)),
                {"v": "1", "symbol": symbol, "ts": str(ts), "price": "100.25", "size": "1", "source": "sim"},
            )
            published[ts] = stamp
            sent += 1
        await pipe.execute()
        await asyncio.sleep(interval)
    await client.aclose()
    return sent


async def run(port: int, redis_url: str, prefix: str, args: argparse.Namespace) -> None:
    published: dict[int, float] = {}
    latencies: list[float] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    counter = [0, args.clients]
    tasks = [
        asyncio.create_task(client(port, published, latencies, ready, counter, stop))
        for _ in range(args.clients)
    ]
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(1.0)
    sent = await publish(redis_url, prefix, args.rate, args.seconds, published)
    await asyncio.sleep(2.0)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    values = np.asarray(latencies) * 1000
    expected = sent * args.clients
    p50, p99 = np.percentile(values, [50, 99]) if len(values) else (float("nan"), float("nan"))
    print(f"streamer fan-out: {args.rate} ticks/s for {args.seconds:.0f} s to {args.clients} SSE clients")
    print(f"  ticks published      {sent}")
    print(f"  deliveries received  {len(values)} of {expected} ({100 * len(values) / max(1, expected):.1f}%)")
    print(f"  publish -> receive   p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {values.max():.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    servers = find_or_start(Path(tempfile.mkdtemp(prefix="stocktrack-bench-stream-")), log=lambda m: None)
    prefix = f"benchstream{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": servers.redis_url,
        "STREAM_PREFIX": prefix,
        "TICK_SHARDS": str(SHARDS),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "STREAMER_CLIENT_QUEUE": "100000",
    }
    proc = subprocess.Popen([sys.executable, "-m", "streamer"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("streamer did not start") from None
                time.sleep(0.1)
        asyncio.run(run(port, servers.redis_url, prefix, args))
    finally:
        proc.terminate()
        proc.wait(15)
        client = redis.Redis.from_url(servers.redis_url)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
        servers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
