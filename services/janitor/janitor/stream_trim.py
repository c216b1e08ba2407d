"""`trim-streams`: trim each stream below the oldest entry some consumer group still needs.

For every group the oldest entry it still needs is the smaller of
  - its oldest pending entry (delivered, not acknowledged: XPENDING summary), and
  - the first entry after its last-delivered-id (not delivered yet: XINFO GROUPS).
The stream is trimmed with XTRIM MINID to the smallest of those over all groups and the id of
the STREAM_KEEP-th newest entry (the tail the streamer's resumes read), so no unacknowledged
or undelivered entry is ever removed. Trimming is exact, not `~`: approximate trimming would be
just as safe (it only ever removes less), but exact makes the reported counts true.

Why reading then trimming is safe without a transaction: between the two, groups only move
forward (deliver, acknowledge), so the boundary computed earlier is at most too conservative.
Streams without groups (models, dead letters) are read with XREAD by broadcast readers
and keep just their tail; the dead-letter stream keeps a longer one for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog

from janitor.context import TaskContext
from janitor.report import TaskOutcome
from stocktrack_common.consumer import group_info
from stocktrack_common.stream_ids import StreamId, format_stream_id, next_stream_id, parse_stream_id
from stocktrack_common.stream_names import (
    amendments_stream,
    consumer_presence_key,
    dead_stream,
    models_stream,
    signals_stream,
    tick_streams,
)

log = structlog.get_logger(__name__)

_COUNT_PAGE = 10_000


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_ids(entries: list[Any] | None) -> list[str]:
    """Ids of XRANGE/XREVRANGE entries (redis-py types the reply loosely, it is never None here)."""
    return [_s(entry[0]) for entry in entries or []]


@dataclass
class TrimPlan:
    stream: str
    length: int
    keep: int
    group_floor: StreamId | None = None
    tail_floor: StreamId | None = None
    holding_group: str | None = None

    @property
    def min_id(self) -> StreamId | None:
        """Trim below this id; None when the tail alone already covers the whole stream."""
        if self.tail_floor is None:
            return None
        if self.group_floor is None:
            return self.tail_floor
        return min(self.group_floor, self.tail_floor)


async def discover_streams(redis: aioredis.Redis, prefix: str, shards: int) -> list[str]:
    """Streams under the prefix found by SCAN, plus the well-known names, existing ones only."""
    names = {
        *tick_streams(prefix, shards),
        signals_stream(prefix),
        amendments_stream(prefix),
        dead_stream(prefix),
        models_stream(prefix),
    }
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000, _type="stream"):
        names.add(_s(key))
    found = []
    for name in sorted(names):
        if _s(await redis.type(name)) == "stream":
            found.append(name)
    return found


async def plan_trim(redis: aioredis.Redis, stream: str, keep: int) -> TrimPlan:
    plan = TrimPlan(stream=stream, length=int(await redis.xlen(stream)), keep=keep)
    for group in await redis.xinfo_groups(stream):
        name = _s(group["name"])
        floor = next_stream_id(parse_stream_id(group["last-delivered-id"]))
        if int(group["pending"]) > 0:
            summary = await redis.xpending(stream, name)
            if summary.get("min") is not None:
                floor = min(floor, parse_stream_id(summary["min"]))
        if plan.group_floor is None or floor < plan.group_floor:
            plan.group_floor = floor
            plan.holding_group = name
    tail = _entry_ids(await redis.xrevrange(stream, max="+", min="-", count=keep))
    if len(tail) >= keep:
        plan.tail_floor = parse_stream_id(tail[-1])
    return plan


async def count_below(redis: aioredis.Redis, stream: str, min_id: StreamId) -> int:
    """Entries with an id below `min_id`, paged so a dry run never loads a whole stream."""
    total, start = 0, "-"
    while True:
        page = _entry_ids(
            await redis.xrange(stream, min=start, max=f"({format_stream_id(min_id)}", count=_COUNT_PAGE)
        )
        total += len(page)
        if len(page) < _COUNT_PAGE:
            return total
        start = f"({page[-1]}"


# Deletes a consumer only if it holds no pending entry, checked and done atomically: deleting a
# consumer drops its pending entries from the group, which would lose them.
DELETE_IF_IDLE_AND_EMPTY = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""


async def prune_consumers(
    redis: aioredis.Redis, prefix: str, stream: str, group: str, idle_ms: int, dry_run: bool
) -> list[str]:
    """Consumers left by pods that are gone (Deployments rename pods on every rollout).

    Idle time alone cannot tell a departed pod from a live reader blocked on a quiet stream, so a
    consumer whose presence key (refreshed by its running loop) exists is never deleted.
    """
    idle = [
        _s(c["name"])
        for c in await redis.xinfo_consumers(stream, group)
        if int(c["pending"]) == 0 and int(c["idle"]) >= idle_ms
    ]
    stale = [name for name in idle if not await redis.exists(consumer_presence_key(prefix, group, name))]
    if dry_run or not stale:
        return stale
    script = redis.register_script(DELETE_IF_IDLE_AND_EMPTY)
    deleted = []
    for name in stale:
        if int(await script(keys=[stream], args=[group, name])) == 0:
            deleted.append(name)
    return deleted


async def run_trim_streams(ctx: TaskContext) -> TaskOutcome:
    settings = ctx.settings
    redis = await ctx.redis()
    dead = dead_stream(settings.stream_prefix)
    outcome = TaskOutcome(counts={"streams": 0, "entries_trimmed": 0, "idle_consumers_deleted": 0})
    report: dict[str, Any] = {}
    for stream in await discover_streams(redis, settings.stream_prefix, settings.tick_shards):
        keep = settings.dead_stream_keep if stream == dead else settings.stream_keep
        plan = await plan_trim(redis, stream, keep)
        min_id = plan.min_id
        trimmed = 0
        if min_id is not None:
            if ctx.dry_run:
                trimmed = await count_below(redis, stream, min_id)
            else:
                trimmed = int(await redis.xtrim(stream, minid=format_stream_id(min_id), approximate=False))
        groups = {}
        consumers_pruned = 0
        for group in await redis.xinfo_groups(stream):
            name = _s(group["name"])
            info = await group_info(redis, stream, name)
            if info is not None:
                groups[name] = info
            pruned = await prune_consumers(
                redis,
                settings.stream_prefix,
                stream,
                name,
                int(settings.consumer_idle_delete_hours * 3_600_000),
                ctx.dry_run,
            )
            consumers_pruned += len(pruned)
        length = int(await redis.xlen(stream))
        entry = {
            "length": length,
            "trimmed": trimmed,
            "trim_below": format_stream_id(min_id) if min_id else None,
            "held_by": plan.holding_group if min_id and min_id == plan.group_floor else "tail",
            "groups": groups,
            "idle_consumers_deleted": consumers_pruned,
        }
        log.info(
            "would trim stream" if ctx.dry_run else "trimmed stream",
            stream=stream,
            dry_run=ctx.dry_run,
            **entry,
        )
        ctx.emf.emit(
            {"Stream": stream},
            {
                "stocktrack_janitor_stream_length": (length, "Count"),
                "stocktrack_janitor_stream_entries_trimmed": (trimmed, "Count"),
            },
        )
        for name, info in groups.items():
            ctx.emf.emit(
                {"Stream": stream, "Group": name},
                {
                    "stocktrack_janitor_stream_group_lag": (info["lag"], "Count"),
                    "stocktrack_janitor_stream_group_pending": (info["pending"], "Count"),
                },
            )
        report[stream] = entry
        outcome.add("streams")
        outcome.add("entries_trimmed", trimmed)
        outcome.add("idle_consumers_deleted", consumers_pruned)
    outcome.details["streams"] = report
    return outcome
