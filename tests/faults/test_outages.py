"""Outages lose nothing: the whole pipeline through Redis down 15 s and 60 s, and PostgreSQL down 60 s.

Every run replays the same recorded ticks (a seeded file with fixed timestamps) through the fetcher,
writer, recommender and alerts worker, each run on its own redis-server (AOF, `appendfsync
everysec`, the newest redis-server on the machine) and, for the PostgreSQL outage, its own
PostgreSQL. A fault-free run of the same file is the reference: after each outage the stored
ticks, the stored signals (key, action and confidence) and the recorded alerts must equal the
reference exactly: nothing lost, nothing doubled. No consumer may exit, the fetcher must finish
with nothing dropped, and every group's lag, read through the product's own lag function, is 0
after the drain.

The 60 s runs are marked `outage`: they run in CI; `pytest -m "not outage"` skips them locally.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from psycopg import sql
from psycopg.types.json import Jsonb

from stocktrack_common.consumer import group_info
from stocktrack_common.migrations import migrate
from stocktrack_common.stream_names import (
    ALERTS_GROUP,
    RECOMMENDER_GROUP,
    WRITER_GROUP,
    signals_stream,
    tick_streams,
)
from stocktrack_devtools.servers import EmbeddedPostgres, ensure_database
from tests.faults.harness import (
    SHARDS,
    SYMBOLS,
    OwnRedis,
    dead_letters,
    drained,
    http_status,
    pipeline_env,
    published_signals,
    published_ticks,
    row_count,
    stop_immediately,
)
from tests.support.databases import clone_database
from tests.support.processes import ServiceProcess, Services, child_env
from tests.support.waiting import wait_until

STEP_MS = 100  # one tick per symbol every 100 ms of recorded time
RECORDED_SECONDS = 48
REPLAY_SPEED = "4"  # 48 recorded seconds in 12 s: about 320 ticks/s
CROSS_LEVEL = "100"

Signals = dict[tuple[str, int, str], tuple[str, float]]


def write_recording(path: Path) -> int:
    """A seeded random walk per symbol around CROSS_LEVEL, so prices cross it and rules fire.

    Its times start an hour ago (inside tick retention) and are fixed in the file, so every run
    of the module publishes exactly the same ticks.
    """
    t0_ms = (int(time.time() * 1000) - 3_600_000) // 60_000 * 60_000
    rng = random.Random(16)
    symbols = SYMBOLS.split(",")
    prices = dict.fromkeys(symbols, 100.0)
    lines = ["symbol,ts,price,size"]
    for step in range(RECORDED_SECONDS * 1000 // STEP_MS):
        for symbol in symbols:
            prices[symbol] = max(1.0, prices[symbol] * (1 + rng.gauss(0, 0.004)))
            lines.append(f"{symbol},{t0_ms + step * STEP_MS},{prices[symbol]:.4f},{rng.randint(1, 500)}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


@dataclass
class Outcome:
    ticks: set[tuple[str, int, str]]
    signals: Signals
    alerts: set[tuple[str, str]]
    tick_rows: int
    signal_rows: int


def add_alert_rules(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for rule_id, symbol, condition in (
            ("cross", "AAPL", {"type": "price_cross", "level": CROSS_LEVEL, "direction": "either"}),
            ("signals", "MSFT", {"type": "signal", "actions": ["buy", "sell"]}),
        ):
            conn.execute(
                "INSERT INTO alert_rules (id, symbol, condition, target_type, target_url)"
                " VALUES (%s, %s, %s, 'webhook', 'http://127.0.0.1:9/hook')",
                (rule_id, symbol, Jsonb(condition)),
            )


def outcome(db_url: str) -> Outcome:
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        ticks = conn.execute(
            "SELECT symbol, (extract(epoch FROM ts) * 1000)::bigint, source FROM ticks"
        ).fetchall()
        signals = conn.execute(
            "SELECT symbol, (extract(epoch FROM ts) * 1000)::bigint, source, action, confidence FROM signals"
        ).fetchall()
        alerts = conn.execute("SELECT rule_id, event_key FROM alert_deliveries").fetchall()
    return Outcome(
        ticks={(s, int(t), src) for s, t, src in ticks},
        signals={(s, int(t), src): (a, float(c)) for s, t, src, a, c in signals},
        alerts={(r, k) for r, k in alerts},
        tick_rows=len(ticks),
        signal_rows=len(signals),
    )


def lags(url: str, prefix: str) -> dict[str, dict[str, int]]:
    """Pending and lag of every group on every stream, as the services' own gauge computes them."""
    wanted = [
        (s, g) for s in tick_streams(prefix, SHARDS) for g in (WRITER_GROUP, RECOMMENDER_GROUP, ALERTS_GROUP)
    ]
    wanted += [(signals_stream(prefix), g) for g in (WRITER_GROUP, ALERTS_GROUP)]

    async def read() -> dict[str, dict[str, int]]:
        client = aioredis.Redis.from_url(url)
        try:
            found = {}
            for stream, group in wanted:
                info = await group_info(client, stream, group)
                assert info is not None, f"no group {group} on {stream}"
                found[f"{stream}/{group}"] = info
            return found
        finally:
            await client.aclose()

    return asyncio.run(read())


def finished(fetcher: ServiceProcess) -> dict[str, object]:
    for line in reversed(fetcher.output().splitlines()):
        if '"fetcher finished"' in line:
            return dict(json.loads(line))
    raise AssertionError(f"the fetcher did not finish cleanly:\n{fetcher.output()[-3000:]}")


Fault = Callable[[OwnRedis, list[ServiceProcess], ServiceProcess], None]


def run_pipeline(
    work: Path, redis_server: OwnRedis, db_url: str, recording: Path, ticks: int, fault: Fault | None
) -> Outcome:
    prefix = "outage"
    add_alert_rules(db_url)
    env = pipeline_env(
        work,
        REDIS_URL=redis_server.url,
        DATABASE_URL=db_url,
        STREAM_PREFIX=prefix,
        PROVIDER="replay",
        REPLAY_PATH=str(recording),
        REPLAY_SPEED=REPLAY_SPEED,
        REPLAY_KIND="ticks",
        ALERTS_MAX_EVENT_AGE_SECONDS="86400",  # the recording is an hour old
        ALERTS_ALLOW_PRIVATE_TARGETS="true",
        ALERTS_RULES_REFRESH_SECONDS="3600",
        FETCHER_PUBLISH_RETRY_MAX_SECONDS="2",
    )
    services = Services(child_env(**env), work)
    client = redis.Redis.from_url(redis_server.url)
    try:
        consumers = [services.start(m, name=f"{m}-0") for m in ("writer", "recommender", "alerts")]
        for proc in consumers:
            proc.wait_healthy(60)
        fetcher = services.start("fetcher", name="fetcher-0")
        fetcher.wait_healthy(60)
        if fault is not None:
            wait_until(lambda: len(published_ticks(client, prefix).keys) > 500, 30, "ticks before the fault")
            fault(redis_server, consumers, fetcher)
            client.close()
            client = redis.Redis.from_url(redis_server.url)
        assert fetcher.wait(180) == 0, fetcher.output()[-3000:]
        final = finished(fetcher)
        assert (final["published"], final["dropped"]) == (ticks, {}), final
        wait_until(
            lambda: (
                drained(client, prefix, alerts=True)
                and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)
                and row_count(db_url, "signals") == len(published_signals(client, prefix).distinct)
            ),
            120,
            "the pipeline to drain",
            interval=0.5,
        )
        for proc in consumers:
            assert proc.proc is not None and proc.proc.poll() is None, (
                f"{proc.module} exited:\n{proc.output()[-3000:]}"
            )
        group_lags = lags(redis_server.url, prefix)
        assert all(v == {"pending": 0, "lag": 0} for v in group_lags.values()), group_lags
        assert dead_letters(client, prefix) == [], "an outage is not the entries' fault"
        return outcome(db_url)
    finally:
        client.close()
        services.stop_all()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("recording") / "ticks.csv"
    return path, write_recording(path)


@pytest.fixture(scope="module")
def module_database(pg_server_url: str, template_db: str) -> Iterator[Callable[[], str]]:
    """Fresh migrated databases on the shared server (its per-run template), dropped afterwards."""
    created: list[str] = []

    def make() -> str:
        name = f"{template_db.removesuffix('_template')}_outage{len(created)}"
        created.append(name)
        return clone_database(pg_server_url, template_db, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, recording: tuple[Path, int], module_database: Callable[[], str]
) -> Outcome:
    """The fault-free run every outage is compared with."""
    work = tmp_path_factory.mktemp("reference")
    server = OwnRedis(work / "redis")
    try:
        result = run_pipeline(work, server, module_database(), *recording, fault=None)
    finally:
        server.stop()
    print(
        f"\nreference run (redis-server {'.'.join(map(str, server.version))}): ticks={len(result.ticks)}"
        f" signals={len(result.signals)} alerts={len(result.alerts)}"
    )
    assert len(result.ticks) == recording[1] and result.signals and result.alerts
    return result


def compare(what: str, got: Outcome, reference: Outcome) -> None:
    lost_ticks, extra_ticks = reference.ticks - got.ticks, got.ticks - reference.ticks
    lost_signals = reference.signals.keys() - got.signals.keys()
    extra_signals = got.signals.keys() - reference.signals.keys()
    changed = {
        k for k in reference.signals.keys() & got.signals.keys() if reference.signals[k] != got.signals[k]
    }
    print(
        f"\n{what}: ticks={len(got.ticks)} (lost={len(lost_ticks)} extra={len(extra_ticks)}"
        f" duplicated={got.tick_rows - len(got.ticks)}) signals={len(got.signals)}"
        f" (lost={len(lost_signals)} extra={len(extra_signals)} changed={len(changed)}"
        f" duplicated={got.signal_rows - len(got.signals)}) alerts={len(got.alerts)}"
        f" (lost={len(reference.alerts - got.alerts)} extra={len(got.alerts - reference.alerts)})"
    )
    assert got.ticks == reference.ticks and got.tick_rows == len(reference.ticks)
    assert got.signals == reference.signals and got.signal_rows == len(reference.signals)
    assert got.alerts == reference.alerts


def redis_down(seconds: float) -> Fault:
    def fault(server: OwnRedis, consumers: list[ServiceProcess], fetcher: ServiceProcess) -> None:
        server.kill()
        down_at = time.monotonic()
        ready = f"http://127.0.0.1:{fetcher.port}/readyz"
        wait_until(lambda: http_status(ready) == 503, 10, "the fetcher's /readyz to report it cannot publish")
        while time.monotonic() - down_at < seconds:
            for proc in [*consumers, fetcher]:
                assert proc.proc is not None and proc.proc.poll() is None, (
                    f"{proc.module} exited during the outage"
                )
            time.sleep(0.5)
        server.start()
        # Recovered: ready again, or, its replay having ended during the outage, done publishing
        # the buffer and exited (within ~70 ms of reconnecting: a race a poll could miss either
        # way); run_pipeline then checks that it exited cleanly, published every tick, dropped none.
        assert fetcher.proc is not None
        wait_until(
            lambda: http_status(ready) == 200 or fetcher.proc.poll() is not None,  # type: ignore[union-attr]
            30,
            "the fetcher to publish again",
        )

    return fault


def run_redis_outage(
    seconds: float, tmp_path: Path, recording: tuple[Path, int], reference: Outcome, db_url: str
) -> None:
    server = OwnRedis(tmp_path / "redis")
    try:
        got = run_pipeline(tmp_path, server, db_url, *recording, fault=redis_down(seconds))
    finally:
        server.stop()
    compare(f"redis-server {'.'.join(map(str, server.version))} SIGKILLed for {seconds:.0f}s", got, reference)


def test_redis_down_15s_loses_and_doubles_nothing(
    tmp_path: Path, recording: tuple[Path, int], reference: Outcome, module_database: Callable[[], str]
) -> None:
    run_redis_outage(15, tmp_path, recording, reference, module_database())


@pytest.mark.outage
def test_redis_down_60s_loses_and_doubles_nothing(
    tmp_path: Path, recording: tuple[Path, int], reference: Outcome, module_database: Callable[[], str]
) -> None:
    run_redis_outage(60, tmp_path, recording, reference, module_database())


@pytest.mark.outage
def test_postgres_down_60s_loses_and_doubles_nothing(
    tmp_path: Path, recording: tuple[Path, int], reference: Outcome
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres")
    postgres.start()
    redis_server = OwnRedis(tmp_path / "redis")
    try:
        db_url = ensure_database(postgres.url, "outage")
        migrate(db_url)

        def fault(server: OwnRedis, consumers: list[ServiceProcess], fetcher: ServiceProcess) -> None:
            stop_immediately(postgres)
            down_at = time.monotonic()
            writer_ready = f"http://127.0.0.1:{consumers[0].port}/readyz"
            wait_until(
                lambda: http_status(writer_ready) == 503,
                10,
                "the writer's /readyz to report the database down",
            )
            while time.monotonic() - down_at < 60:
                for proc in consumers:
                    assert proc.proc is not None and proc.proc.poll() is None, (
                        f"{proc.module} exited during the outage"
                    )
                time.sleep(0.5)
            postgres.start()

        got = run_pipeline(tmp_path, redis_server, db_url, *recording, fault=fault)
    finally:
        redis_server.stop()
        postgres.stop()
    compare("postgresql stopped -m immediate for 60s", got, reference)
