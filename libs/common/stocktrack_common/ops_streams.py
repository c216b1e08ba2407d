"""`stocktrack streams`: length, groups, lag, pending and oldest pending age of every stream.

Lag comes from stream_lag.group_lag, the function the consumers' gauge and `stocktrack doctor`
use: XINFO's `lag` where the stream confirms it, else counted from the group's last-delivered
id (Redis 6.2 has no `lag` at all). Counting stops at stream_lag.LAG_COUNT_LIMIT, and the report
says when it is a lower bound. Ages come
from the server's clock, not the operator's, so a skewed laptop clock cannot mislead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from stocktrack_common.ops_args import add_target_args, connect_redis, resolve_target, warn_if_defaults
from stocktrack_common.stream_lag import group_lag


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def entry_ms(entry_id: str) -> int:
    """Milliseconds part of a stream id (`<ms>-<seq>`): when the entry was added."""
    return int(entry_id.split("-", 1)[0])


@dataclass(frozen=True)
class GroupStatus:
    name: str
    consumers: int
    pending: int
    lag: int
    lag_exact: bool
    last_delivered_id: str
    oldest_pending_id: str | None
    oldest_pending_age_s: float | None


@dataclass(frozen=True)
class StreamStatus:
    name: str
    length: int
    groups: list[GroupStatus] = field(default_factory=list)


async def discover_streams(redis: aioredis.Redis, prefix: str) -> list[str]:
    """Every stream key under the prefix (SCAN ... TYPE stream, Redis 6.0+), in a stable order."""
    names = {_text(key) async for key in redis.scan_iter(match=f"{prefix}:*", count=1000, _type="stream")}
    return sorted(names)


async def group_status(redis: aioredis.Redis, stream: str, info: dict[str, Any], now_ms: int) -> GroupStatus:
    name = _text(info["name"])
    last_delivered = _text(info["last-delivered-id"])
    lag, exact = await group_lag(redis, stream, info)
    pending = int(info["pending"])
    oldest_id: str | None = None
    age: float | None = None
    if pending:
        summary = await redis.xpending(stream, name)
        if summary and summary.get("min"):
            oldest_id = _text(summary["min"])
            age = max(0.0, (now_ms - entry_ms(oldest_id)) / 1000)
    return GroupStatus(
        name=name,
        consumers=int(info["consumers"]),
        pending=pending,
        lag=lag,
        lag_exact=exact,
        last_delivered_id=last_delivered,
        oldest_pending_id=oldest_id,
        oldest_pending_age_s=age,
    )


async def stream_status(redis: aioredis.Redis, stream: str, now_ms: int) -> StreamStatus | None:
    """Status of one stream; None when it does not exist."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return None
    length = int(await redis.xlen(stream))
    statuses = [await group_status(redis, stream, g, now_ms) for g in groups]
    return StreamStatus(stream, length, sorted(statuses, key=lambda g: g.name))


async def server_time_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def stream_report(redis: aioredis.Redis, prefix: str) -> list[StreamStatus]:
    now_ms = await server_time_ms(redis)
    report = []
    for name in await discover_streams(redis, prefix):
        status = await stream_status(redis, name, now_ms)
        if status is not None:
            report.append(status)
    return report


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def render_table(report: list[StreamStatus]) -> str:
    header = f"{'STREAM':<32} {'LENGTH':>9}  {'GROUP':<14} {'CONSUMERS':>9} {'LAG':>9} {'PENDING':>9}  OLDEST PENDING"
    lines = [header]
    for stream in report:
        if not stream.groups:
            lines.append(f"{stream.name:<32} {stream.length:>9}  (no groups)")
        for i, group in enumerate(stream.groups):
            name, length = (stream.name, str(stream.length)) if i == 0 else ("", "")
            lag = f"{group.lag}" if group.lag_exact else f">={group.lag}"
            lines.append(
                f"{name:<32} {length:>9}  {group.name:<14} {group.consumers:>9} {lag:>9} {group.pending:>9}"
                f"  {format_age(group.oldest_pending_age_s)}"
            )
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    warn_if_defaults("stocktrack streams", target)
    redis = await connect_redis(target)
    try:
        report = await stream_report(redis, target.prefix)
    finally:
        await redis.aclose()
    if args.json:
        print(orjson.dumps([asdict(s) for s in report], option=orjson.OPT_INDENT_2).decode())
    elif report:
        print(render_table(report))
    if not report:
        # Often a mistyped --prefix/STREAM_PREFIX: say so, rather than print an empty table.
        print(f"stocktrack streams: no streams under prefix {target.prefix!r}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `stocktrack streams`."""
    parser = argparse.ArgumentParser(
        prog="stocktrack streams",
        description="length, groups, lag, pending and oldest pending age per stream",
    )
    add_target_args(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return asyncio.run(_run(parser.parse_args(argv)))
