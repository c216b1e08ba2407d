"""Latest-quote throughput of the api beside a bare aiohttp handler, and history query latency.

Both servers run as separate processes and answer the same request from the same Redis hash
(one HGET), so the ratio is the cost of the api's middleware (request ids, access logs, metrics,
CORS, errors, auth, a Redis-backed rate limit) and validation. The api runs as production
configures it (deploy/helm/values-production.yaml): INFO access logs rendered as JSON, EMF
latencies on, behind a trusted proxy that sends X-Forwarded-For. Reads need no key there, so the
headline is an anonymous client (rate limited per address); a client presenting an API key
(looked up, then cached, and rate limited per key) is measured too. The load generator keeps a
fixed number of requests in flight; the servers take turns in short rounds so a change in the
machine's load falls on all of them alike.

The bars part stores 30 days of 1-minute bars for one symbol (one INSERT into bars_1m, which
also fills the roll-up tables) and measures one day of 1-minute bars (1,440 bars) under load at
`--bars-concurrency`: the api's CPU time per request and latency percentiles, beside the bare
handler serving the same body from memory (the HTTP floor for that many bytes), in alternating
rounds. Every client asking for the same day is a popular chart, where identical requests in
flight share one read; a third row has each request ask for another day of the 30, so each is a
query of its own. Each api row prints the share of its requests answered by a read in flight
(from the api's /metrics). Then 1h and 1d bars over the 30 days and the newest 5,000 1-minute bars, one request at
a time.

Usage: python bench/api.py [--seconds 8] [--rounds 4] [--concurrency 32] [--bars-concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import psycopg
import redis
from psycopg import sql

from stocktrack_common.api_keys import create_key
from stocktrack_common.migrations import migrate
from stocktrack_common.stream_names import latest_quotes_key
from stocktrack_devtools.servers import database_url, find_or_start, free_port

QUOTE = b'{"symbol":"AAPL","ts":1714570200000,"price":"190.25","size":100,"source":"sim"}'
PEPPER = "bench-pepper"
# What the load balancer adds in production; the api believes it from TRUSTED_PROXIES.
PROXIED = {"X-Forwarded-For": "203.0.113.7"}


async def bare_server(port: int, redis_url: str, key: str) -> None:
    """The baseline: one aiohttp handler doing the same HGET, nothing else; and a bars body
    (put in Redis under `key:bars` by the bench) served as it is."""
    import redis.asyncio as aioredis
    from aiohttp import web

    client = aioredis.Redis.from_url(redis_url)
    bars_body: list[bytes] = []

    async def latest(request: web.Request) -> web.Response:
        body = await client.hget(key, request.match_info["symbol"])
        return web.Response(body=body, content_type="application/json")

    async def bars(request: web.Request) -> web.Response:
        if not bars_body:
            bars_body.append(await client.get(f"{key}:bars") or b"")
        return web.Response(body=bars_body[0], content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/quotes/{symbol}/latest", latest)
    app.router.add_get("/v1/bars/{symbol}", bars)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} not up in {timeout}s")


async def load(
    url: str | Callable[[], str], seconds: float, concurrency: int, headers: dict[str, str] | None = None
) -> tuple[float, np.ndarray]:
    """Requests per second and latencies of `concurrency` clients asking `url` (or a new one each time)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    next_url = url if callable(url) else lambda: url
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(next_url()) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url} answered {response.status}")
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, np.asarray(latencies)


# What one load run asks for: a URL (or a new one per request), headers, the serving process's pid.
Run = tuple[str | Callable[[], str], dict[str, str], int]


@dataclass
class Measured:
    rate: float  # requests per second, mean of the rounds
    latencies: np.ndarray
    cpu_per_request: float  # seconds of the serving process's CPU
    shared: float  # share of requests answered by a read in flight (0 where not counted)


def measure(
    runs: dict[str, Run],
    rounds: int,
    seconds: float,
    concurrency: int,
    shared: Callable[[], float] = lambda: 0.0,
) -> dict[str, Measured]:
    """Load every run in turn, a second of warm-up first, then `rounds` rounds of seconds/rounds each.

    Alternating short rounds: a change in the machine's load falls on every run alike, so their
    ratios stay fair on a shared machine.
    """
    for url, headers, _ in runs.values():
        asyncio.run(load(url, 1.0, concurrency, headers))
    served: dict[str, list[tuple[float, np.ndarray]]] = {name: [] for name in runs}
    cpu = dict.fromkeys(runs, 0.0)
    joined = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, (url, headers, pid) in runs.items():
            cpu_before, joined_before = cpu_seconds(pid), shared()
            served[name].append(asyncio.run(load(url, seconds / rounds, concurrency, headers)))
            cpu[name] += cpu_seconds(pid) - cpu_before
            joined[name] += shared() - joined_before
    out = {}
    for name, results in served.items():
        latencies = np.concatenate([lat for _, lat in results])
        out[name] = Measured(
            rate=sum(rps for rps, _ in results) / len(results),
            latencies=latencies,
            cpu_per_request=cpu[name] / len(latencies),
            shared=joined[name] / len(latencies),
        )
    return out


def shared_reads(port: int) -> float:
    """The api's count of bar requests answered by an identical read in flight (its /metrics)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith('stocktrack_api_shared_reads_total{endpoint="bars"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def timed_gets(url: str, repeats: int) -> np.ndarray:
    latencies = []
    async with aiohttp.ClientSession() as session:
        for _ in range(repeats):
            start = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - start)
    return np.asarray(latencies)


async def make_read_key(db_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        _, key = await create_key(conn, "bench", ["read"], PEPPER)
    return key


def seed_bars(db_url: str, end: dt.datetime, days: int) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
            SELECT 'AAPL', b, p, p + 1, p - 1, p + 0.5, 100 + i %% 17, 1 + i %% 5, b, b + interval '59 seconds'
            FROM generate_series(0, %s - 1) AS i,
                 LATERAL (SELECT %s - (%s - i) * interval '1 minute') AS t(b),
                 -- Prices as providers quote US equities: at most 4 decimal places, not a float's 15 digits.
                 LATERAL (SELECT round((100 + sin(i / 50.0))::numeric, 4)) AS q(p)
            """,
            (days * 1440, end, days * 1440),
        )
        row = conn.execute("SELECT count(*) FROM bars_1m").fetchone()
    return int(row[0]) if row else 0


def ms_line(name: str, values: np.ndarray) -> str:
    p50, p99 = np.percentile(values * 1000, [50, 99])
    return f"{name:<34} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bars-concurrency", type=int, default=16)
    parser.add_argument("--history-repeats", type=int, default=60)
    parser.add_argument(
        "--bare-server", nargs=3, metavar=("PORT", "REDIS_URL", "KEY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.bare_server:
        port, redis_url, key = args.bare_server
        asyncio.run(bare_server(int(port), redis_url, key))
        return 0

    servers = find_or_start(Path(tempfile.mkdtemp(prefix="stocktrack-bench-api-")), log=lambda m: None)
    run = uuid.uuid4().hex[:8]
    db_name, prefix = f"bench_api_{run}", f"benchapi{run}"
    with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    db_url = database_url(servers.postgres_url, db_name)
    rclient = redis.Redis.from_url(servers.redis_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate(db_url)
        key = latest_quotes_key(prefix)
        rclient.hset(key, "AAPL", QUOTE)
        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        rows = seed_bars(db_url, end, 30)
        api_key = asyncio.run(make_read_key(db_url))

        api_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "REDIS_URL": servers.redis_url,
            "DATABASE_URL": db_url,
            "STREAM_PREFIX": prefix,
            "HTTP_PORT": str(api_port),
            "LOG_LEVEL": "INFO",
            "EMF_ENABLED": "true",
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "API_KEY_PEPPER": PEPPER,
            "RATE_LIMIT_IP_PER_MINUTE": "1000000000",
            "RATE_LIMIT_KEY_PER_MINUTE": "1000000000",
        }
        procs.append(subprocess.Popen([sys.executable, "-m", "api"], env=env, stdout=subprocess.DEVNULL))
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--bare-server", str(bare_port), servers.redis_url, key]
            )
        )
        wait_up(f"http://127.0.0.1:{api_port}/healthz", procs[0])
        wait_up(f"http://127.0.0.1:{bare_port}/v1/quotes/AAPL/latest", procs[1])

        path = "/v1/quotes/AAPL/latest"
        api_pid, bare_pid = procs[0].pid, procs[1].pid
        runs: dict[str, Run] = {
            "bare aiohttp handler": (f"http://127.0.0.1:{bare_port}{path}", PROXIED, bare_pid),
            "stocktrack api": (f"http://127.0.0.1:{api_port}{path}", PROXIED, api_pid),
            "api, with an API key": (
                f"http://127.0.0.1:{api_port}{path}",
                {**PROXIED, "Authorization": f"Bearer {api_key}"},
                api_pid,
            ),
        }
        quotes = measure(runs, args.rounds, args.seconds, args.concurrency)
        print(
            f"latest quote, concurrency {args.concurrency}, {args.seconds:.0f} s each in {args.rounds} rounds"
            f" (load average {os.getloadavg()[0]:.2f})"
        )
        for name, m in quotes.items():
            print(
                f"  {name:<21} {m.rate:7.0f} req/s  {m.cpu_per_request * 1e6:4.0f} us CPU/req   "
                + ms_line("", m.latencies).strip()
            )
        rates = {name: m.rate for name, m in quotes.items()}
        bare = rates["bare aiohttp handler"]
        print(f"  ratio api / bare      {rates['stocktrack api'] / bare:7.2f}x   (goal 0.60x, p99 <= 10 ms)")
        print(f"  ratio keyed / bare    {rates['api, with an API key'] / bare:7.2f}x")

        stop = (end + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        day_from = (end - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
        day_path = f"/v1/bars/AAPL?interval=1m&from={day_from}&to={stop}&limit=1440"
        day_runs: dict[str, Run] = {
            "bare handler, same body": (f"http://127.0.0.1:{bare_port}{day_path}", PROXIED, bare_pid),
            "stocktrack api": (f"http://127.0.0.1:{api_port}{day_path}", PROXIED, api_pid),
        }
        body = urllib.request.urlopen(f"http://127.0.0.1:{api_port}{day_path}", timeout=10).read()
        rclient.set(f"{key}:bars", body)
        c = args.bars_concurrency
        # Besides every client asking for the same day (a popular chart, where identical requests
        # in flight share one read), each request for another day of the 30: no two alike, so
        # every one is a query of its own.
        rng = random.Random(7)

        def another_day() -> str:
            to = end - dt.timedelta(minutes=rng.randrange(0, 28 * 1440))
            since = (to - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
            until = to.isoformat().replace("+00:00", "Z")
            return f"http://127.0.0.1:{api_port}/v1/bars/AAPL?interval=1m&from={since}&to={until}&limit=1440"

        day_runs["api, each request another day"] = (another_day, PROXIED, api_pid)
        days = measure(day_runs, args.rounds, args.seconds, c, shared=lambda: shared_reads(api_port))
        print(
            f"one day of 1m bars (1440 bars, {len(body):,} bytes), concurrency {c}, {args.seconds:.0f} s each"
            f" in {args.rounds} rounds (load average {os.getloadavg()[0]:.2f})"
        )
        for name, m in days.items():
            print(
                f"  {name:<31} {m.rate:6.0f} req/s  {m.cpu_per_request * 1000:5.2f} ms CPU/req   "
                + ms_line("", m.latencies).strip()
            )
            if name != "bare handler, same body":
                print(f"    answered by a read already in flight: {m.shared:.0%}")
        print(
            f"  ratio api / bare                {days['stocktrack api'].rate / days['bare handler, same body'].rate:6.2f}x"
            "   (goal: api <= 3 ms CPU/req, p99 <= 20 ms)"
        )

        start = (end - dt.timedelta(days=30)).isoformat().replace("+00:00", "Z")
        base = f"http://127.0.0.1:{api_port}/v1/bars/AAPL?from={start}&to={stop}"
        print(
            f"history: 30 days of 1-minute bars for one symbol ({rows} rows), one request at a time"
            f" (load average {os.getloadavg()[0]:.2f})"
        )
        for label, url in (
            ("1h bars over 30 days (720 bars)", f"{base}&interval=1h&limit=5000"),
            ("1d bars over 30 days (30 bars)", f"{base}&interval=1d"),
            ("newest 5000 1m bars of 30 days", f"{base}&interval=1m&limit=5000"),
        ):
            asyncio.run(timed_gets(url, 3))
            print("  " + ms_line(label, asyncio.run(timed_gets(url, args.history_repeats))))
        print("  (goal: 1h bars over 30 days p99 <= 10 ms)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        rclient.delete(latest_quotes_key(prefix))
        for k in rclient.scan_iter(match=f"{prefix}:*"):
            rclient.delete(k)
        rclient.close()
        with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
        servers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
