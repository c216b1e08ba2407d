"""`stocktrack doctor`: is this deployment healthy enough to take traffic? One line per check.

Exit status is for scripts and probes: 0 when nothing failed (warnings allowed), 1 when any check
failed (or, with --strict, warned). Checks:

- Redis answers and is 6.2 or newer (the oldest server whose stream commands we use), and its
  cluster mode (INFO cluster) matches REDIS_CLUSTER: a standalone client on a cluster node fails
  with MOVED on every key another node owns;
- PostgreSQL answers, every migration shipped with this version ran, none was edited after it ran;
- a `ticks` partition exists for today and the next --days-ahead days (UTC): without it, inserts for
  that day fail, so a missing partition for tomorrow means the janitor is not doing its job;
- an active model exists (a warning only: the recommender falls back to rules without one);
- every consumer group is within --max-lag entries and --max-pending-age seconds;
- the writer group exists on every tick shard (a warning: a fresh deployment may not have started yet);
- the dead-letter stream is empty (a warning: entries there wait for an operator, see `stocktrack dead`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stocktrack_common.migrations import Migration, migration_status
from stocktrack_common.ops_args import (
    Target,
    add_target_args,
    connect_redis,
    non_negative_int,
    non_negative_seconds,
    resolve_target,
    warn_if_defaults,
)
from stocktrack_common.ops_streams import StreamStatus, format_age, stream_report
from stocktrack_common.partitions import existing_partitions, partition_name
from stocktrack_common.redis_client import cluster_enabled, server_version
from stocktrack_common.stream_names import WRITER_GROUP, dead_stream, tick_streams

Status = Literal["ok", "warn", "fail"]
MIN_REDIS = (6, 2)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Thresholds:
    max_lag: int
    max_pending_age_s: float
    days_ahead: int


async def check_redis(redis: aioredis.Redis, cluster: bool = False) -> Check:
    version = await server_version(redis)
    text = ".".join(map(str, version))
    if version[:2] < MIN_REDIS:
        return Check("redis", "fail", f"server {text} is older than 6.2")
    enabled = await cluster_enabled(redis)
    if enabled != cluster:
        mode = "a cluster node" if enabled else "not a cluster node"
        return Check("redis", "fail", f"server {text} is {mode} but REDIS_CLUSTER={str(cluster).lower()}")
    return Check("redis", "ok", f"server {text}{' (cluster)' if cluster else ''}")


async def check_migrations(conn: psycopg.AsyncConnection) -> Check:
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    applied: dict[int, str] = {}
    if row and row[0]:
        cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
        applied = {int(version): str(checksum) for version, checksum in await cur.fetchall()}
    pending, edited = migration_status(applied)
    if edited:
        return Check("migrations", "fail", f"edited after they ran: {', '.join(_names(edited))}")
    if pending:
        return Check(
            "migrations", "fail", f"pending: {', '.join(_names(pending))} (run `stocktrack migrate`)"
        )
    return Check("migrations", "ok", f"{len(applied)} applied")


def _names(migrations: list[Migration]) -> list[str]:
    return [f"{m.version:04d}_{m.name}" for m in migrations]


async def check_partitions(conn: psycopg.AsyncConnection, today: dt.date, days_ahead: int) -> Check:
    have = await existing_partitions(conn)
    wanted = [today + dt.timedelta(days=i) for i in range(days_ahead + 1)]
    missing = [partition_name(day) for day in wanted if day not in have]
    if missing:
        return Check("partitions", "fail", f"missing: {', '.join(missing)} (run the janitor's partition job)")
    return Check("partitions", "ok", f"{partition_name(wanted[0])} .. {partition_name(wanted[-1])} exist")


async def check_active_model(conn: psycopg.AsyncConnection) -> Check:
    cur = await conn.execute("SELECT id FROM models WHERE active LIMIT 1")
    row = await cur.fetchone()
    if row is None:
        return Check("model", "warn", "no active model; the recommender uses rules only")
    return Check("model", "ok", f"active model {row[0]}")


def check_consumers(report: list[StreamStatus], limits: Thresholds) -> Check:
    problems = []
    groups = 0
    for stream in report:
        for group in stream.groups:
            groups += 1
            if group.lag > limits.max_lag:
                problems.append(f"{stream.name}/{group.name} lag {group.lag} > {limits.max_lag}")
            age = group.oldest_pending_age_s
            if age is not None and age > limits.max_pending_age_s:
                problems.append(f"{stream.name}/{group.name} oldest pending {format_age(age)}")
    if problems:
        return Check("consumers", "fail", "; ".join(problems))
    return Check("consumers", "ok", f"{groups} group(s) within lag {limits.max_lag}")


def check_streams_exist(report: list[StreamStatus], prefix: str) -> Check:
    """No stream at all under the prefix is a typo or an empty deployment, never a healthy one."""
    if not report:
        return Check(
            "streams", "fail", f"no streams under prefix {prefix!r} (check --prefix / STREAM_PREFIX)"
        )
    return Check("streams", "ok", f"{len(report)} stream(s) under {prefix!r}")


def check_writer_groups(report: list[StreamStatus], target: Target) -> Check:
    by_name = {s.name: s for s in report}
    missing = [
        name
        for name in tick_streams(target.prefix, target.tick_shards)
        if name not in by_name or all(g.name != WRITER_GROUP for g in by_name[name].groups)
    ]
    if missing:
        return Check("writer-groups", "warn", f"no writer group on: {', '.join(missing)}")
    return Check("writer-groups", "ok", f"writer group on all {target.tick_shards} shard(s)")


def check_dead_letters(report: list[StreamStatus], prefix: str) -> Check:
    dead = next((s for s in report if s.name == dead_stream(prefix)), None)
    if dead is not None and dead.length:
        return Check("dead-letters", "warn", f"{dead.length} entr(y/ies) waiting; see `stocktrack dead list`")
    return Check("dead-letters", "ok", "none")


async def _guarded(name: str, run: Callable[[], Awaitable[list[Check]]]) -> list[Check]:
    """A check that cannot reach its server fails with the reason instead of crashing the doctor."""
    try:
        return await run()
    except (OSError, RedisError, psycopg.Error) as exc:
        return [Check(name, "fail", f"unreachable: {type(exc).__name__}: {exc}".splitlines()[0])]


async def run_checks(target: Target, limits: Thresholds, today: dt.date | None = None) -> list[Check]:
    day = today or dt.datetime.now(dt.UTC).date()

    async def redis_checks() -> list[Check]:
        redis = await connect_redis(target)
        try:
            checks = [await check_redis(redis, target.cluster)]
            report = await stream_report(redis, target.prefix)
        finally:
            await redis.aclose()
        checks += [
            check_streams_exist(report, target.prefix),
            check_consumers(report, limits),
            check_writer_groups(report, target),
            check_dead_letters(report, target.prefix),
        ]
        return checks

    async def postgres_checks() -> list[Check]:
        url = target.database_url.get_secret_value()
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=5, autocommit=True) as conn:
            version = conn.info.server_version
            checks = [Check("postgres", "ok", f"server {version // 10000}.{version % 10000}")]
            checks.append(await check_migrations(conn))
            if checks[-1].status == "fail":
                return checks  # the tables below may not exist yet
            checks.append(await check_partitions(conn, day, limits.days_ahead))
            checks.append(await check_active_model(conn))
        return checks

    results = await asyncio.gather(_guarded("redis", redis_checks), _guarded("postgres", postgres_checks))
    return [check for group in results for check in group]


def exit_code(checks: list[Check], *, strict: bool) -> int:
    failing: set[Status] = {"fail", "warn"} if strict else {"fail"}
    return 1 if any(c.status in failing for c in checks) else 0


def main(argv: list[str]) -> int:
    """Entry point of `stocktrack doctor`."""
    parser = argparse.ArgumentParser(
        prog="stocktrack doctor", description="health checks for scripts and probes"
    )
    add_target_args(parser, database=True)
    parser.add_argument(
        "--max-lag", type=non_negative_int, default=10_000, help="largest acceptable group lag (entries)"
    )
    parser.add_argument(
        "--max-pending-age",
        type=non_negative_seconds,
        default=300.0,
        help="oldest acceptable pending entry (seconds)",
    )
    parser.add_argument(
        "--days-ahead", type=non_negative_int, default=1, help="partitions required after today (UTC)"
    )
    parser.add_argument("--strict", action="store_true", help="warnings fail too")
    args = parser.parse_args(argv)
    limits = Thresholds(args.max_lag, args.max_pending_age, args.days_ahead)
    target = resolve_target(args)
    warn_if_defaults("stocktrack doctor", target)
    checks = asyncio.run(run_checks(target, limits))
    if target.defaults:
        checks.insert(
            0, Check("config", "warn", f"not set, local defaults used: {', '.join(target.defaults)}")
        )
    for check in checks:
        print(f"{check.status.upper():<5} {check.name:<14} {check.detail}")
    code = exit_code(checks, strict=args.strict)
    print("doctor: " + ("FAILED" if code else "healthy"), file=sys.stderr if code else sys.stdout)
    return code
