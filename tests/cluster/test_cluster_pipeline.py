"""The whole pipeline on a three-master Redis Cluster, and a kill -9 of the writer on it.

Fetcher (simulator) -> tick shards -> writer / recommender -> signals -> writer, api latest
quotes and the streamer's SSE with resume, every service with REDIS_CLUSTER=true. The tick
shards and the signals stream hash to slots on different masters (asserted below), so every
multi-stream reader has to split its reads per slot to work at all.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import redis

from stocktrack_common.redis_client import slot_of
from stocktrack_common.stream_names import signals_stream, tick_streams
from tests.faults.harness import (
    SHARDS,
    Ledger,
    drained,
    http_status,
    pipeline_env,
    published_signals,
    published_ticks,
    row_count,
    stored_signals,
    stored_ticks,
    total_pending,
)
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

NAMES = {m: f"{m}-0" for m in ("writer", "recommender", "alerts", "api", "streamer", "fetcher")}


def _cluster_env(tmp_path: Path, cluster_url: str) -> dict[str, str]:
    return pipeline_env(tmp_path, REDIS_URL=cluster_url, REDIS_CLUSTER="true", SIM_TICKS_PER_SECOND="400")


def _sse_events(
    port: int, count: int, last_event_id: str | None = None, timeout: float = 20.0
) -> list[tuple[str, str]]:
    """The first `count` (id, data) events of a tick stream, heartbeats skipped."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    events: list[tuple[str, str]] = []
    try:
        conn.request("GET", "/v1/stream?types=ticks", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        event_id, kind = "", "message"
        deadline = time.monotonic() + timeout
        while len(events) < count and time.monotonic() < deadline:
            line = resp.readline().decode().rstrip("\n")
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind != "heartbeat":
                events.append((event_id, line[5:].strip()))
            elif line == "":
                event_id, kind = "", "message"
        assert len(events) == count, f"only {len(events)} of {count} events within {timeout}s"
        return events
    finally:
        conn.close()


def _start_all(services: Services, env: dict[str, str], *, alerts: bool = False) -> dict[str, ServiceProcess]:
    workers = ("writer", "recommender", "api", "streamer", *(("alerts",) if alerts else ()))
    procs = {m: services.start(m, name=NAMES[m], **env) for m in workers}
    for proc in procs.values():
        proc.wait_healthy(60)
    procs["fetcher"] = services.start("fetcher", name=NAMES["fetcher"], **env)
    procs["fetcher"].wait_healthy(60)
    return procs


def _books_balance(
    client: redis.RedisCluster, prefix: str, db_url: str, *, min_ticks: int, alerts: bool = False
) -> None:
    def settled() -> bool:
        return (
            drained(client, prefix, alerts=alerts)  # type: ignore[arg-type]
            and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)  # type: ignore[arg-type]
            and row_count(db_url, "signals") == len(published_signals(client, prefix).distinct)  # type: ignore[arg-type]
        )

    wait_until(settled, 90, "the pipeline to drain", interval=0.5)
    ticks = Ledger.of(published_ticks(client, prefix), stored_ticks(db_url))  # type: ignore[arg-type]
    signals = Ledger.of(published_signals(client, prefix), stored_signals(db_url))  # type: ignore[arg-type]
    print(ticks.line("ticks"))
    print(signals.line("signals"))
    assert ticks.published >= min_ticks, "too few ticks flowed to prove anything"
    assert signals.published > 0
    ticks.assert_exact()
    signals.assert_exact()
    assert total_pending(client, prefix) == 0  # type: ignore[arg-type]


def test_pipeline_on_a_cluster_serves_quotes_signals_and_resumable_sse(
    services: Services,
    sync_cluster: redis.RedisCluster,
    cluster_url: str,
    db_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    streams = [*tick_streams(prefix, SHARDS), signals_stream(prefix)]
    owners = {sync_cluster.get_node_from_key(s).name for s in streams}
    assert len(owners) >= 2, f"the streams should span masters: {[(s, slot_of(s)) for s in streams]}"
    # alerts reads the signals stream and its shards in one group: a multi-slot reader too
    procs = _start_all(services, _cluster_env(tmp_path, cluster_url), alerts=True)
    api, streamer = procs["api"], procs["streamer"]
    wait_until(lambda: len(published_signals(sync_cluster, prefix).keys) > 0, 60, "the first signals")  # type: ignore[arg-type]
    wait_until(
        lambda: http_status(f"http://127.0.0.1:{api.port}/v1/quotes/AAPL/latest") == 200, 30, "a latest quote"
    )
    wait_until(lambda: row_count(db_url, "signals") > 0, 30, "signals stored by the writer")

    first = _sse_events(streamer.port, 40)
    symbols = {json.loads(data)["symbol"] for _, data in first}
    assert len(symbols) > 1, "ticks of one shard only: the streamer read a single slot"
    resume_at = 9
    resumed = _sse_events(streamer.port, 20, last_event_id=first[resume_at][0])
    assert resumed[: len(first) - resume_at - 1] == first[resume_at + 1 : resume_at + 21]

    assert procs["fetcher"].terminate() == 0
    _books_balance(sync_cluster, prefix, db_url, min_ticks=200, alerts=True)


def test_kill_9_writer_on_a_cluster_loses_and_doubles_nothing(
    services: Services,
    sync_cluster: redis.RedisCluster,
    cluster_url: str,
    db_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    env = _cluster_env(tmp_path, cluster_url)
    procs = _start_all(services, env)
    wait_until(lambda: row_count(db_url, "ticks") > 500, 60, "the writer to store ticks")
    procs["writer"].kill()
    procs["writer"] = services.start("writer", name=NAMES["writer"], **env)
    procs["writer"].wait_healthy(60)
    before = row_count(db_url, "ticks")
    wait_until(lambda: row_count(db_url, "ticks") > before, 30, "the restarted writer to store ticks")
    # Ticks flow until signals do too (a few closed bars): on a fast machine the writer's first
    # 500 rows and its restart took under two one-second bars, and the books held no signal.
    wait_until(lambda: sync_cluster.xlen(signals_stream(prefix)) > 0, 60, "a signal to be published")
    assert procs["fetcher"].terminate() == 0
    _books_balance(sync_cluster, prefix, db_url, min_ticks=500)
