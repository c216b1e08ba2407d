"""Advisory locks: a second run of a task skips or waits, never errors, and never repeats work."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import redis.asyncio as aioredis

from janitor.advisory_lock import JANITOR_LOCK_CLASS, TASK_LOCK_KEYS
from stocktrack_common.stream_names import signals_stream
from tests.janitor.conftest import RunJanitor
from tests.janitor.test_trim_streams import fill
from tests.janitor.tick_data import load_ticks, make_ticks, tick_days_present, today_utc
from tests.support.waiting import wait_until_async

ALL_TASKS = ["partitions", "retention", "trim-streams", "prune-models", "vacuum"]


def seed_ticks(db_url: str) -> list[dt.date]:
    today = today_utc()
    days = [today - dt.timedelta(days=i) for i in range(39, -1, -1)]
    load_ticks(db_url, make_ticks(days))
    return days


def hold_locks(db_url: str, tasks: list[str]) -> psycopg.Connection:
    conn = psycopg.connect(db_url, autocommit=True)
    for task in tasks:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (JANITOR_LOCK_CLASS, TASK_LOCK_KEYS[task]))
    return conn


async def test_running_task_makes_second_run_skip_then_wait(db_url: str, run_janitor: RunJanitor) -> None:
    days = seed_ticks(db_url)
    holder = hold_locks(db_url, ["retention"])
    try:
        skipped = (await run_janitor("retention", tick_retention_days=30))[0]
        assert skipped.status == "skipped"
        assert tick_days_present(db_url) == days

        async def release_soon() -> None:
            await asyncio.sleep(0.5)
            holder.execute("SELECT pg_advisory_unlock_all()")

        waited, _ = await asyncio.gather(
            run_janitor("retention", tick_retention_days=30, lock_wait_seconds=10), release_soon()
        )
    finally:
        holder.close()
    assert waited[0].status == "ok" and waited[0].duration_s >= 0.4
    assert waited[0].counts["partitions_dropped"] == 10
    assert tick_days_present(db_url) == days[-30:]


def start_all(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "janitor", "all", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, list[dict[str, Any]]]:
    out, _ = proc.communicate(timeout=60)
    events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return proc.returncode, events


def summarise(runs: list[tuple[int, list[dict[str, Any]]]]) -> dict[str, dict[str, int]]:
    """Per task: runs that did it, runs that skipped it, and the work done summed over both runs."""
    summary = {
        task: {"ok": 0, "skipped": 0, "partitions_dropped": 0, "entries_trimmed": 0, "partitions_created": 0}
        for task in ALL_TASKS
    }
    for code, events in runs:
        assert code == 0, events
        assert not [e for e in events if e.get("level") in {"error", "critical"}], events
        for event in events:
            task = str(event.get("task"))
            if event.get("event") == "task finished":
                summary[task]["ok"] += 1
                for key in ("partitions_dropped", "entries_trimmed", "partitions_created"):
                    summary[task][key] += int(event.get(key, 0))
            elif str(event.get("event", "")).startswith("task skipped"):
                summary[task]["skipped"] += 1
    return summary


async def test_two_concurrent_all_runs_do_the_work_once(
    db_url: str, redis_client: aioredis.Redis, prefix: str, service_env: Callable[..., dict[str, str]]
) -> None:
    days = seed_ticks(db_url)
    await fill(redis_client, signals_stream(prefix), 50)
    env = service_env(TICK_RETENTION_DAYS="30", STREAM_KEEP="10", TICK_SHARDS="2", PARTITIONS_AHEAD_DAYS="3")

    # Both runs wait on the locks held here, then race for every task the moment they are released.
    holder = hold_locks(db_url, ALL_TASKS)
    try:
        procs = [start_all(env, "--wait-lock", "30") for _ in range(2)]

        def both_waiting() -> bool:
            row = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND query LIKE 'SELECT pg_try_advisory_lock%'"
            ).fetchone()
            return row is not None and row[0] >= 2

        await wait_until_async(both_waiting, 60, "both runs to wait on the held locks")
    finally:
        holder.close()
    waited = summarise([finish(p) for p in procs])

    for task in ALL_TASKS:
        assert waited[task]["ok"] == 2, waited  # the second waited, then found nothing left to do
    assert waited["retention"]["partitions_dropped"] == 10
    assert waited["trim-streams"]["entries_trimmed"] == 40
    assert waited["partitions"]["partitions_created"] == 3  # today exists already; three days ahead
    assert tick_days_present(db_url) == days[-30:]

    # Without waiting, whichever run is second skips a task the other holds (or finds it done).
    racing = summarise([finish(p) for p in [start_all(env), start_all(env)]])
    for task in ALL_TASKS:
        assert racing[task]["ok"] + racing[task]["skipped"] == 2 and racing[task]["ok"] >= 1
        assert racing[task]["partitions_dropped"] == racing[task]["entries_trimmed"] == 0
