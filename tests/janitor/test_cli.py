"""The command line: `stocktrack janitor`, EMF metrics on stdout, dry runs, and a failing exit code."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable

import psycopg
import redis.asyncio as aioredis

from stocktrack_common.stream_names import signals_stream
from tests.janitor.conftest import RunJanitor
from tests.janitor.test_prune_models import add_models, model_ids
from tests.janitor.test_trim_streams import fill
from tests.janitor.tick_data import fetch_bars, load_ticks, make_ticks, partition_names, today_utc


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stocktrack_common.cli", "janitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_stocktrack_janitor_emits_emf_with_last_success(
    db_url: str, service_env: Callable[..., dict[str, str]]
) -> None:
    done = run_cli(
        service_env(PARTITIONS_AHEAD_DAYS="1", EMF_ENABLED="true", EMF_NAMESPACE="StocktrackTest"),
        "partitions",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"_aws"')]
    assert len(lines) == 1
    emf = lines[0]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "StocktrackTest"
    assert directive["Dimensions"] == [["Service", "Task"]]
    assert emf["Task"] == "partitions" and emf["stocktrack_janitor_partitions_created"] == 2
    assert abs(emf["stocktrack_janitor_last_success_timestamp_seconds"] - dt.datetime.now().timestamp()) < 60
    assert len(partition_names(db_url)) == 2


def test_unreachable_database_exits_non_zero(service_env: Callable[..., dict[str, str]], db_url: str) -> None:
    missing = db_url.rsplit("/", 1)[0] + "/no_such_database_for_janitor"
    env = {**service_env(CONNECT_ATTEMPTS="1"), "DATABASE_URL": missing}
    failed = run_cli(env, "partitions")

    assert failed.returncode != 0
    assert "no_such_database_for_janitor" in failed.stdout + failed.stderr


async def test_dry_run_of_all_changes_nothing(
    db_url: str, redis_client: aioredis.Redis, prefix: str, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    load_ticks(db_url, make_ticks([today - dt.timedelta(days=i) for i in range(40)]))
    add_models(db_url, 8, active_index=2)
    await fill(redis_client, signals_stream(prefix), 30)
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO bars_1m VALUES ('AAPL', '2020-01-01', 1, 1, 1, 1, 1, 1, now(), now())")
    before = (partition_names(db_url), fetch_bars(db_url), model_ids(db_url))

    reports = await run_janitor("all", dry_run=True, stream_keep=5, models_keep=1)

    assert [r.status for r in reports] == ["ok"] * 5
    counts = {r.task: r.counts for r in reports}
    assert counts["retention"]["partitions_dropped"] == 10 and counts["retention"]["bars_deleted"] == 1
    assert counts["trim-streams"]["entries_trimmed"] == 25
    assert counts["prune-models"]["models_deleted"] == 6
    assert counts["partitions"]["partitions_created"] == 7
    assert (partition_names(db_url), fetch_bars(db_url), model_ids(db_url)) == before
    assert await redis_client.xlen(signals_stream(prefix)) == 30
