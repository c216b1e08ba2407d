"""Redis dies (SIGKILL) mid-run and comes back on the same port and data directory.

The test's own redis-server runs with AOF and `appendfsync everysec` (the Redis default, and what
docs/reliability.md documents). Producers and consumers must reconnect by themselves; the books
are balanced against the fetcher's own count of the XADDs Redis acknowledged, which is what a
crash could lose. docs/reliability.md says a process crash loses no acknowledged write (the AOF
was already written to the kernel, only its fsync was pending), so `lost` must be 0 here.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stocktrack_devtools.servers import free_port, start_embedded_redis
from tests.faults.harness import (
    Ledger,
    dead_letters,
    drained,
    http_status,
    pipeline_env,
    published_signals,
    published_ticks,
    row_count,
    stored_signals,
    stored_ticks,
)
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

MAX_TICKS = 9000


class OwnRedis:
    """A redis-server only this test uses, restartable on the same port and directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url, self.proc = start_embedded_redis(data_dir, self.port)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def start(self) -> None:
        self.url, self.proc = start_embedded_redis(self.data_dir, self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


def acknowledged_by_redis(fetcher: ServiceProcess) -> int:
    """The fetcher's final log line counts the ticks whose XADD pipeline Redis answered."""
    for line in reversed(fetcher.output().splitlines()):
        if '"fetcher finished"' in line:
            return int(json.loads(line)["published"])
    raise AssertionError(f"the fetcher did not finish cleanly:\n{fetcher.output()[-3000:]}")


def test_pipeline_reconnects_after_a_redis_crash_and_loses_nothing_acknowledged(
    services: Services, own_redis: OwnRedis, db_url: str, prefix: str, tmp_path: Path
) -> None:
    env = pipeline_env(
        tmp_path, REDIS_URL=own_redis.url, SIM_TICKS_PER_SECOND="500", SIM_MAX_TICKS=str(MAX_TICKS)
    )
    consumers = [services.start(m, name=f"{m}-0", **env) for m in ("writer", "recommender")]
    for proc in consumers:
        proc.wait_healthy(60)
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    client = redis.Redis.from_url(own_redis.url)
    try:
        wait_until(lambda: row_count(db_url, "ticks") > 1000, 30, "ticks before the crash")
        client.close()
        own_redis.kill()
        killed_at = time.monotonic()
        # Redis stays down until every consumer has seen it go (its /readyz reports 503).
        wait_until(
            lambda: all(http_status(f"http://127.0.0.1:{p.port}/readyz") == 503 for p in consumers),
            30,
            "every consumer to report Redis down",
        )
        down_seconds = time.monotonic() - killed_at
        own_redis.start()
        client = redis.Redis.from_url(own_redis.url)
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        after_restart = len(published_ticks(client, prefix).keys)

        assert fetcher.wait(60) == 0, fetcher.output()[-3000:]
        acknowledged = acknowledged_by_redis(fetcher)
        assert acknowledged == MAX_TICKS
        for proc in consumers:
            assert proc.proc is not None and proc.proc.poll() is None, proc.output()[-3000:]
        wait_until(
            lambda: (
                drained(client, prefix)
                and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)
                and row_count(db_url, "signals") == len(published_signals(client, prefix).distinct)
            ),
            60,
            "the pipeline to drain after the restart",
            interval=0.5,
        )
        in_streams = published_ticks(client, prefix)
        ticks = Ledger.of(in_streams, stored_ticks(db_url), len(dead_letters(client, prefix)))
        signals = Ledger.of(published_signals(client, prefix), stored_signals(db_url))
        lost_in_redis = acknowledged - len(in_streams.distinct)
        print(
            f"\nredis SIGKILLed for {down_seconds:.1f}s (AOF, appendfsync everysec):"
            f" acknowledged XADDs={acknowledged} in streams after restart={len(in_streams.distinct)}"
            f" lost by redis={lost_in_redis} republished-by-producer={in_streams.repeated}"
            f" (entries present right after the restart: {after_restart})"
        )
        print(ticks.line("ticks"))
        print(signals.line("signals"))
        assert lost_in_redis == 0
        ticks.assert_exact()
        signals.assert_exact()
    finally:
        client.close()
