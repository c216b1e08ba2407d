"""A consumer group's lag (entries not yet delivered to it), computed one way everywhere.

XINFO GROUPS reports `lag` from Redis 7.0 on, derived from counters (`entries-added` minus the
group's `entries-read`). Those counters are not always right: 7.x leaves `lag` empty after
deletions in the stream, and a 7.0 server that reloaded its AOF was seen reporting a lag of
11,000 after a full drain that never cleared. The lag is therefore counted from the group's
`last-delivered-id` (entries after it, page by page, as on 6.2) whenever the reported value is
missing or inconsistent with what the stream shows: a group whose last delivered entry is the
stream's last entry has nothing undelivered, one with entries after it has some, and no group
can lag by more than the stream holds. The checks cost two O(1) commands per group.

The consumers' lag gauge, `stocktrack streams`, `stocktrack doctor` and the janitor all use
`group_lag`, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from stocktrack_common.stream_ids import parse_stream_id

LAG_COUNT_LIMIT = 100_000
_COUNT_PAGE = 10_000


class Lag(NamedTuple):
    entries: int
    exact: bool  # False when counting stopped at LAG_COUNT_LIMIT: `entries` is a lower bound


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def count_entries_after(
    redis: aioredis.Redis, stream: str, last_id: str, limit: int = LAG_COUNT_LIMIT
) -> Lag:
    """Entries after `last_id`, counted page by page up to `limit`."""
    counted = 0
    start = "-" if last_id == "0-0" else f"({last_id}"
    while counted < limit:
        page: list[Any] = await redis.xrange(stream, min=start, max="+", count=_COUNT_PAGE) or []
        counted += len(page)
        if len(page) < _COUNT_PAGE:
            return Lag(counted, True)
        start = f"({_text(page[-1][0])}"
    return Lag(counted, False)


async def _reported_lag_holds(redis: aioredis.Redis, stream: str, last_delivered: str, reported: int) -> bool:
    """Whether XINFO's lag agrees with the stream: 0 exactly when nothing follows the last delivered id."""
    newest: list[Any] = await redis.xrevrange(stream, max="+", min="-", count=1) or []
    at_end = not newest or parse_stream_id(newest[0][0]) <= parse_stream_id(last_delivered)
    if at_end:
        return reported == 0
    return 0 < reported <= int(await redis.xlen(stream))


async def group_lag(redis: aioredis.Redis, stream: str, info: Mapping[Any, Any]) -> Lag:
    """The lag of the group described by `info` (one entry of XINFO GROUPS for `stream`)."""
    last_delivered = _text(info["last-delivered-id"])
    reported = info.get("lag")
    if reported is not None and await _reported_lag_holds(redis, stream, last_delivered, int(reported)):
        return Lag(int(reported), True)
    return await count_entries_after(redis, stream, last_delivered)
