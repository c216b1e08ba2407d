"""Load soak: the whole pipeline at a sustained tick rate over 500 symbols, for minutes.

    python bench/soak.py [--minutes 10] [--rate 2000] [--symbols 500] [--out build/soak]

Runs fetcher (sim), writer, recommender, api and streamer (with one SSE client attached) as
subprocesses on a fresh database and stream prefix, then prints:

- throughput: ticks published and committed per second, signals per second;
- tick published -> row committed latency percentiles. Sampled: the next entry published to a
  shard stream is taken as it arrives (XREAD from `$`; its entry id is the time Redis accepted
  the XADD) and the ticks table is polled every 5 ms for its key until the row is visible;
  latency = first visible - XADD time, so it includes the poll's resolution (<= 5 ms plus one
  query);
- bar close -> signal published latency percentiles: a signal's ts is the start of the bar that
  produced it, and it can be produced only after that bar has ended, so latency = the signal's
  XADD time - (bar start + bar length). It includes the recommender's BAR_CLOSE_GRACE_MS (its
  close timer fires at each bar end plus that grace) and the work of closing every symbol's bar
  at that instant;
- RSS of every service after a warm-up and at the end, against --rss-growth-mb (exit code 1 if a
  service grew more);
- consumer lag (undelivered + pending) of each group over time, as a PNG plot.

Uses REDIS_URL / DATABASE_URL or finds local servers like `make test`; removes its database and
stream keys afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import psutil
import psycopg
import redis
from psycopg import sql

from stocktrack_common.messages import MessageError, decode_signal, decode_tick
from stocktrack_common.migrations import migrate
from stocktrack_common.stream_names import RECOMMENDER_GROUP, WRITER_GROUP, signals_stream, tick_streams
from stocktrack_devtools.servers import database_url, find_or_start, free_port

SERVICES = ("writer", "recommender", "api", "streamer", "fetcher")
SHARDS = 4
Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    rss_start: int = 0
    rss_end: int = 0
    cpu_start: float = 0.0
    cpu_end: float = 0.0

    def rss(self) -> int:
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)


@dataclass
class Samples:
    commit_ms: list[float] = field(default_factory=list)
    lag: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"n={len(ordered)} p50={at(0.50):.0f}ms p90={at(0.90):.0f}ms p99={at(0.99):.0f}ms"
        f" max={ordered[-1]:.0f}ms mean={statistics.fmean(ordered):.0f}ms"
    )


def start_service(name: str, env: dict[str, str], log_dir: Path) -> Service:
    port = free_port()
    full = {**env, "HTTP_PORT": str(port), "METRICS_PORT": str(port), "CONSUMER_NAME": f"{name}-0"}
    log = (log_dir / f"{name}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", name], env=full, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {log_dir / (name + '.log')}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return Service(name, proc, port)
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not become healthy")


def sample_commit_latency(
    client: redis.Redis, db_url: str, streams: list[str], stop: threading.Event, out: list[float]
) -> None:
    """Wait for a tick published after the call ($), then poll until its row is visible.

    Sampling the newest entry already in the stream would time its age, not its commit: the
    simulated feed publishes in bursts (one round of every symbol at a time), so between bursts
    the newest entry is an old one that was stored long ago.
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        while not stop.is_set():
            stream = random.choice(streams)
            fresh = cast(list[tuple[bytes, Entries]], client.xread({stream: "$"}, count=1, block=1000))
            if not fresh:
                continue
            entry_id, fields = fresh[0][1][0]
            published_ms = int(entry_id.split(b"-")[0])
            try:
                tick = decode_tick(fields)
            except MessageError:
                continue
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not stop.is_set():
                found = conn.execute(
                    "SELECT 1 FROM ticks WHERE symbol = %s AND source = %s"
                    " AND ts = timestamptz 'epoch' + %s * interval '1 millisecond'",
                    (tick.symbol, tick.source, tick.ts),
                ).fetchone()
                if found:
                    out.append(time.time() * 1000 - published_ms)
                    break
                time.sleep(0.005)


def group_backlog(client: redis.Redis, streams: list[str], group: str) -> int:
    total = 0
    for stream in streams:
        for info in client.xinfo_groups(stream):
            if info["name"].decode() == group:
                lag = info.get("lag")
                if lag is None:
                    last = info["last-delivered-id"].decode()
                    lag = len(cast(Entries, client.xrange(stream, min=f"({last}", max="+")))
                total += int(lag) + int(info["pending"])
    return total


def sample_lag(
    client: redis.Redis,
    prefix: str,
    stop: threading.Event,
    out: dict[str, list[tuple[float, int]]],
    started: float,
) -> None:
    ticks = tick_streams(prefix, SHARDS)
    series = {
        "writer (ticks)": (ticks, WRITER_GROUP),
        "recommender (ticks)": (ticks, RECOMMENDER_GROUP),
        "writer (signals)": ([signals_stream(prefix)], WRITER_GROUP),
    }
    while not stop.wait(2.0):
        for label, (streams, group) in series.items():
            out.setdefault(label, []).append(
                (time.monotonic() - started, group_backlog(client, streams, group))
            )


def read_sse(port: int, stop: threading.Event, counter: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/v1/stream?types=ticks,signals")
    resp = conn.getresponse()
    while not stop.is_set():
        line = resp.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            counter[0] += 1


def signal_latencies(client: redis.Redis, prefix: str, bar_ms: int) -> list[float]:
    out: list[float] = []
    entries = cast(Entries, client.xrange(signals_stream(prefix)))
    for entry_id, fields in entries:
        try:
            signal_ = decode_signal(fields)
        except MessageError:
            continue
        out.append(int(entry_id.split(b"-")[0]) - (signal_.ts + bar_ms))
    return out


def plot_lag(lag: dict[str, list[tuple[float, int]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for label, points in lag.items():
        ax.plot([t for t, _ in points], [v for _, v in points], label=label)
    ax.set_xlabel("seconds since the fetcher started")
    ax.set_ylabel("entries behind (undelivered + pending)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=2000, help="ticks per second over all symbols")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bar-seconds", type=int, default=5, help="recommender bar length")
    parser.add_argument("--warmup-seconds", type=float, default=20.0, help="before the first RSS reading")
    parser.add_argument("--rss-growth-mb", type=float, default=100.0, help="allowed RSS growth per service")
    parser.add_argument("--out", type=Path, default=Path("build/soak"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="stocktrack-soak-"))
    servers = find_or_start(work / "servers", log=lambda m: print(f"[soak] {m}"))
    db_name = f"soak_{uuid.uuid4().hex[:8]}"
    prefix = f"soak{uuid.uuid4().hex[:8]}"
    with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    db_url = database_url(servers.postgres_url, db_name)
    migrate(db_url)
    symbols = ",".join(f"S{i:03d}" for i in range(args.symbols))
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        "REDIS_URL": servers.redis_url,
        "DATABASE_URL": db_url,
        "STREAM_PREFIX": prefix,
        "TICK_SHARDS": str(SHARDS),
        "SYMBOLS": symbols,
        "WATCHLIST_FROM_DB": "false",
        "SIM_TICKS_PER_SECOND": str(args.rate),
        "BAR_INTERVAL_SECONDS": str(args.bar_seconds),
        "WARMUP_BARS": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    client = redis.Redis.from_url(servers.redis_url)
    services: dict[str, Service] = {}
    stop = threading.Event()
    samples = Samples()
    sse_events = [0]
    failed = False
    try:
        for name in SERVICES:
            services[name] = start_service(name, env, work)
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=sample_commit_latency,
                daemon=True,
                args=(client, db_url, tick_streams(prefix, SHARDS), stop, samples.commit_ms),
            ),
            threading.Thread(
                target=sample_lag, args=(client, prefix, stop, samples.lag, started), daemon=True
            ),
            threading.Thread(
                target=read_sse, args=(services["streamer"].port, stop, sse_events), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        time.sleep(min(args.warmup_seconds, args.minutes * 60 / 4))
        for svc in services.values():
            svc.rss_start = svc.rss()
            svc.cpu_start = svc.cpu()
        published_at_warm = sum(client.xlen(s) for s in tick_streams(prefix, SHARDS))
        warm_at = time.monotonic()
        time.sleep(max(0.0, started + args.minutes * 60 - time.monotonic()))
        for svc in services.values():
            svc.rss_end = svc.rss()
            svc.cpu_end = svc.cpu()
        published = sum(client.xlen(s) for s in tick_streams(prefix, SHARDS))
        measured = time.monotonic() - warm_at
        services["fetcher"].proc.send_signal(signal.SIGTERM)
        services["fetcher"].proc.wait(30)
        drain_started = time.monotonic()
        while (
            group_backlog(client, tick_streams(prefix, SHARDS), WRITER_GROUP) > 0
            and time.monotonic() - drain_started < 120
        ):
            time.sleep(0.2)
        drain_seconds = time.monotonic() - drain_started
        stop.set()
        with psycopg.connect(db_url) as conn:
            rows = int(conn.execute("SELECT count(*) FROM ticks").fetchone()[0])  # type: ignore[index]
            stored_signals = int(conn.execute("SELECT count(*) FROM signals").fetchone()[0])  # type: ignore[index]
        total_published = sum(client.xlen(s) for s in tick_streams(prefix, SHARDS))
        signal_ms = signal_latencies(client, prefix, args.bar_seconds * 1000)
        elapsed = time.monotonic() - started

        print(
            f"\nsoak: {args.minutes:g} min, {args.symbols} symbols, target {args.rate} ticks/s,"
            f" {SHARDS} shards, {args.bar_seconds}s bars, {os.cpu_count()} CPUs"
        )
        print(
            f"throughput: published {(published - published_at_warm) / measured:.0f} ticks/s after warm-up;"
            f" total published {total_published}, committed {rows} ({rows - total_published:+d}),"
            f" writer drained {drain_seconds:.1f}s after the fetcher stopped"
        )
        print(
            f"signals: {len(signal_ms)} published ({len(signal_ms) / elapsed:.1f}/s), {stored_signals} stored;"
            f" SSE client received {sse_events[0]} events"
        )
        print(f"tick published -> row committed: {percentiles(samples.commit_ms)}")
        print(f"bar close -> signal published:   {percentiles([float(v) for v in signal_ms])}")
        # CPU time, not wall time: on a shared machine the latencies above include waiting for a
        # core; what each service spends per tick does not.
        ticks_measured = max(1, published - published_at_warm)
        print(f"CPU after warm-up ({measured:.0f}s; load average now {os.getloadavg()[0]:.2f}):")
        for svc in services.values():
            used = svc.cpu_end - svc.cpu_start
            print(
                f"  {svc.name:<12} {used / measured * 100:5.1f}% of a core,"
                f" {used * 1e6 / ticks_measured:6.1f} us per tick"
            )
        print(
            f"memory (RSS after {args.warmup_seconds:g}s warm-up -> end; bound +{args.rss_growth_mb:g} MB):"
        )
        for svc in services.values():
            growth = (svc.rss_end - svc.rss_start) / 2**20
            verdict = "ok" if growth <= args.rss_growth_mb else "EXCEEDED"
            failed |= growth > args.rss_growth_mb
            print(
                f"  {svc.name:<12} {svc.rss_start / 2**20:7.1f} MB -> {svc.rss_end / 2**20:7.1f} MB"
                f" ({growth:+.1f} MB) {verdict}"
            )
        for label, points in samples.lag.items():
            values = [v for _, v in points]
            third = len(values) // 3
            if third:
                middle = statistics.fmean(values[third : 2 * third])
                last = statistics.fmean(values[2 * third :])
                # A backlog that keeps growing means the rate is above what the pipeline sustains.
                print(
                    f"lag {label:<20} mean middle third {middle:.0f}, last third {last:.0f}:"
                    f" {'GROWING' if last > 2 * middle + 1000 else 'steady'}"
                )
            print(f"lag {label:<20} max={max(values) if values else 0} last={values[-1] if values else 0}")
        png = args.out / "consumer_lag.png"
        plot_lag(samples.lag, png, f"consumer lag, {args.rate} ticks/s, {args.symbols} symbols")
        print(f"lag plot: {png}")
        failed |= rows != total_published
    finally:
        stop.set()
        for svc in reversed(list(services.values())):
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
                try:
                    svc.proc.wait(20)
                except subprocess.TimeoutExpired:
                    svc.proc.kill()
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))
        servers.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
