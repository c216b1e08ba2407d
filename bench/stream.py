"""Tick published -> received latency through the streamer, fanned out to many SSE clients.

A publisher XADDs ticks at a fixed rate across the tick shards, each tick's `size` a unique
sequence number and its `ts` the publish time, and remembers when each was published. SSE
clients read the stream in separate load-generator processes (one asyncio loop each, every
connection a bare asyncio.Protocol that only splits events and notes arrival times, so the
generator costs little next to the streamer). The streamer runs as its own process, as in
production.

Two modes:
- default: 100 clients, each receiving every tick of 8 symbols;
- `--symbols 500 --per-client 5 --clients 1000`: 1,000 clients, each subscribed to 5 of 500
  symbols (every symbol has clients/symbols*per_client subscribers), as in issue 17's goal of
  p99 <= 25 ms at 2,000 ticks/s with every event delivered.

Each client's expected events are counted exactly from what was published for its symbols;
delivered counts only expected ticks, once (duplicates and strays are reported apart). Prints
p50/p99/max of publish -> receive over every (tick, client) pair, delivered/expected, the load
average, and the same percentiles for a baseline measured in the same run: one bare XREAD
reader of the tick streams in a load-generator process (Redis's own publish -> read latency on
this machine), with the streamer's figures as ratios of it.

Usage: python bench/stream.py [--rate 2000] [--clients 100] [--seconds 10]
       python bench/stream.py --clients 1000 --symbols 500 --per-client 5 [--client-procs 1]
       (--profile FILE.svg|FILE.txt: the streamer under py-spy, a flame graph or collapsed stacks)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import numpy as np
import redis
import redis.asyncio as aioredis

from stocktrack_common.stream_names import shard_for, tick_stream
from stocktrack_devtools.servers import find_or_start, free_port

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "AMD")
SHARDS = 4
TARGET_P99_MS = 25.0
_SEQ = re.compile(rb'"size":(\d+)')
CONNECT_BATCH = 100  # connections opened at once: the listen backlog is finite


def symbol_names(count: int) -> tuple[str, ...]:
    return DEFAULT_SYMBOLS if count <= 0 else tuple(f"S{k:04d}" for k in range(count))


def client_symbols(index: int, symbols: tuple[str, ...], per_client: int) -> tuple[str, ...] | None:
    """Client `index`'s subscription: consecutive symbols, so every symbol gets as many clients."""
    if per_client <= 0:
        return None
    return tuple(symbols[(index * per_client + j) % len(symbols)] for j in range(per_client))


class SseClient(asyncio.Protocol):
    """One SSE connection: notes (sequence, arrival time) of every tick, nothing more."""

    def __init__(self, request: bytes, connected: asyncio.Event) -> None:
        self.request = request
        self.connected = connected
        self.tail = b""
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        cast(asyncio.WriteTransport, transport).write(self.request)  # uvloop's are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.connected.is_set():
            # The hub has registered the subscription before the response's first bytes.
            if b": connected" not in self.tail + data:
                self.tail += data
                return
            self.connected.set()
        buffer = self.tail + data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.tail = buffer
            return
        self.tail = buffer[cut + 2 :]
        found = _SEQ.findall(buffer, 0, cut)
        self.seqs.extend(map(int, found))
        self.times.extend([now] * len(found))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def baseline_reader(redis_url: str, prefix: str, stop: asyncio.Event) -> tuple[list[int], list[float]]:
    """A bare XREAD of every tick stream: Redis's publish -> read latency, for the ratio."""
    client = aioredis.Redis.from_url(redis_url)
    positions = {tick_stream(prefix, k): "0-0" for k in range(SHARDS)}  # fresh streams: nothing before
    seqs: list[int] = []
    times: list[float] = []
    while not stop.is_set():
        reply: Any = await client.xread(positions, count=1000, block=200)  # type: ignore[arg-type]
        now = time.time()
        for name, items in reply or []:
            for _entry_id, fields in items:
                seqs.append(int(fields[b"size"]))
                times.append(now)
            positions[name.decode()] = items[-1][0].decode()
    await client.aclose()
    return seqs, times


def same(client: SseClient) -> SseClient:
    return client


@dataclass(frozen=True)
class Share:
    """One load-generator process's part of the clients."""

    port: int
    redis_url: str
    prefix: str
    subscriptions: list[tuple[str, ...] | None]
    baseline: bool  # this process also runs the bare XREAD reader


async def generate(share: Share, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    clients: list[SseClient] = []
    for first in range(0, len(share.subscriptions), CONNECT_BATCH):
        batch: list[SseClient] = []
        for symbols in share.subscriptions[first : first + CONNECT_BATCH]:
            query = "types=ticks" + ("" if symbols is None else "&symbols=" + ",".join(symbols))
            request = f"GET /v1/stream?{query} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
            batch.append(SseClient(request.encode(), asyncio.Event()))
        await asyncio.gather(
            *(loop.create_connection(partial(same, c), "127.0.0.1", share.port) for c in batch)
        )
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in batch)), 60)
        clients.extend(batch)
    stop = asyncio.Event()
    reader = (
        asyncio.create_task(baseline_reader(share.redis_url, share.prefix, stop)) if share.baseline else None
    )
    await asyncio.sleep(0.3)  # the baseline reader's first XREAD is waiting
    pipe.send("ready")
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    stop.set()
    base = await reader if reader is not None else ([], [])
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    pipe.send(([(c.seqs, c.times) for c in clients], base))


def generator_process(share: Share, pipe: Connection) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        asyncio.run(generate(share, pipe))
    else:
        uvloop.run(generate(share, pipe))


async def publish(
    url: str, prefix: str, rate: int, seconds: float, symbols: tuple[str, ...]
) -> list[tuple[str, float]]:
    """Publish at `rate` for `seconds`; returns (symbol, publish time) by sequence number."""
    client = aioredis.Redis.from_url(url)
    interval = 0.005
    per_tick = rate * interval
    published: list[tuple[str, float]] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) / interval * per_tick) + 1
        pipe = client.pipeline(transaction=False)
        stamp = time.time()
        ts = str(int(stamp * 1000))
        while len(published) < due:
            seq = len(published)
            symbol = symbols[seq % len(symbols)]
            pipe.xadd(
                tick_stream(prefix, shard_for(symbol, SHARDS)),
                {"v": "1", "symbol": symbol, "ts": ts, "price": "100.25", "size": str(seq), "source": "sim"},
            )
            published.append((symbol, stamp))
        await pipe.execute()
        await asyncio.sleep(interval)
    await client.aclose()
    return published


@dataclass
class Tally:
    latencies_ms: np.ndarray
    expected: int
    delivered: int
    duplicates: int
    strays: int
    complete_clients: int


def tally(
    published: list[tuple[str, float]],
    subscriptions: list[tuple[str, ...] | None],
    received: list[tuple[list[int], list[float]]],
) -> Tally:
    symbols_of = np.asarray([s for s, _ in published])
    stamps = np.asarray([t for _, t in published])
    by_symbol = {s: np.flatnonzero(symbols_of == s) for s in set(symbols_of.tolist())}
    nothing = np.zeros(0, dtype=np.int64)
    latencies: list[np.ndarray] = []
    expected = delivered = duplicates = strays = complete = 0
    for wanted, (seqs, times) in zip(subscriptions, received, strict=True):
        want = (
            np.arange(len(published))
            if wanted is None
            else np.sort(np.concatenate([by_symbol.get(s, nothing) for s in wanted]))
        )
        got = np.asarray(seqs, dtype=np.int64)
        unique, first = np.unique(got, return_index=True)
        hits = np.isin(unique, want)
        expected += len(want)
        delivered += int(hits.sum())
        duplicates += len(got) - len(unique)
        strays += int((~hits).sum())
        complete += int(hits.sum()) == len(want)
        arrived = np.asarray(times)[first[hits]]
        latencies.append((arrived - stamps[unique[hits]]) * 1000)
    return Tally(
        np.concatenate(latencies) if latencies else np.zeros(0),
        expected,
        delivered,
        duplicates,
        strays,
        complete,
    )


def percentiles(values: np.ndarray) -> tuple[float, float, float]:
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99), float(values.max())


@dataclass
class FanOut:
    """One measured run: what was published, what each client got, and the bare XREAD's view."""

    published: list[tuple[str, float]]
    result: Tally
    baseline: Tally
    load_before: float
    load_during: float


def measure(ports: list[int], redis_url: str, prefix: str, args: argparse.Namespace) -> FanOut:
    """Connect the clients (generator process k to streamer ports[k % len(ports)]), publish, tally.

    Used by `run` here (one streamer) and by bench/scale.py (clients split over replicas).
    """
    symbols = symbol_names(args.symbols)
    subscriptions = [client_symbols(i, symbols, args.per_client) for i in range(args.clients)]
    procs = max(1, args.client_procs, len(ports))
    ctx = mp.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []
    for k in range(procs):
        share = Share(ports[k % len(ports)], redis_url, prefix, subscriptions[k::procs], baseline=k == 0)
        mine, theirs = ctx.Pipe()
        worker = ctx.Process(target=generator_process, args=(share, theirs), daemon=True)
        worker.start()
        workers.append((worker, mine))
    for _, pipe in workers:
        if not pipe.poll(120):
            raise SystemExit("load generator did not connect its clients")
        assert pipe.recv() == "ready"
    time.sleep(1.0)
    load_before = os.getloadavg()
    published = asyncio.run(publish(redis_url, prefix, args.rate, args.seconds, symbols))
    load_during = os.getloadavg()
    time.sleep(2.0)
    received: list[tuple[list[int], list[float]]] = [([], [])] * len(subscriptions)
    base: tuple[list[int], list[float]] = ([], [])
    for k, (worker, pipe) in enumerate(workers):
        pipe.send("stop")
        share, share_base = pipe.recv()
        received[k::procs] = share
        if k == 0:
            base = share_base
        worker.join(10)
    return FanOut(
        published,
        tally(published, subscriptions, received),
        tally(published, [None], [base]),
        load_before[0],
        load_during[0],
    )


def run(port: int, redis_url: str, prefix: str, args: argparse.Namespace) -> None:
    fan = measure([port], redis_url, prefix, args)
    published, result, baseline = fan.published, fan.result, fan.baseline
    symbols = symbol_names(args.symbols)
    procs = max(1, args.client_procs)
    p50, p99, worst = percentiles(result.latencies_ms)
    b50, b99, bmax = percentiles(baseline.latencies_ms)
    mode = (
        f"{args.clients} SSE clients x {args.per_client} of {len(symbols)} symbols"
        if args.per_client > 0
        else f"{args.clients} SSE clients x every tick of {len(symbols)} symbols"
    )
    print(
        f"streamer fan-out: {args.rate} ticks/s for {args.seconds:.0f} s to {mode} ({procs} generator process(es))"
    )
    print(
        f"  load average         {fan.load_before:.2f} before, {fan.load_during:.2f} at the end of publishing (1 min)"
    )
    print(f"  ticks published      {len(published)}")
    print(
        f"  delivered/expected   {result.delivered}/{result.expected}"
        f" ({100 * result.delivered / max(1, result.expected):.2f}%), clients complete"
        f" {result.complete_clients}/{args.clients}, duplicates {result.duplicates}, strays {result.strays}"
    )
    print(f"  publish -> receive   p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {worst:.2f} ms")
    print(
        f"  baseline (bare XREAD) p50 {b50:.2f} ms   p99 {b99:.2f} ms   max {bmax:.2f} ms"
        f"  ({baseline.delivered}/{baseline.expected} read)"
    )
    print(f"  ratio to baseline    p50 {p50 / b50:.1f}x   p99 {p99 / b99:.1f}x")
    if args.per_client > 0:
        verdict = "met" if p99 <= TARGET_P99_MS and result.delivered == result.expected else "NOT met"
        print(
            f"  goal p99 <= {TARGET_P99_MS:.0f} ms, all delivered: {verdict} (p99 {p99 / TARGET_P99_MS:.2f}x of it)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--symbols", type=int, default=0, help="symbols S0000.. to publish (0: the 8 default)"
    )
    parser.add_argument(
        "--per-client", type=int, default=0, help="symbols each client subscribes to (0: all)"
    )
    parser.add_argument("--client-procs", type=int, default=1, help="load-generator processes")
    parser.add_argument(
        "--profile", type=Path, help="run the streamer under py-spy, flame graph to this file"
    )
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
    spy: subprocess.Popen[bytes] | None = None
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
        if args.profile is not None:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            output = "flamegraph" if args.profile.suffix == ".svg" else "raw"
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--output",
                    str(args.profile),
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--format",
                    output,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        run(port, servers.redis_url, prefix, args)
    finally:
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
            spy.wait(30)
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
