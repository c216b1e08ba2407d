"""Request rate limits shared by every api replica, kept in Redis.

A sliding window approximated from two fixed one-minute windows (the current count plus the
previous count weighted by how much of it still overlaps): one round trip and two small keys
per client, without the double burst a plain fixed window allows at each boundary.

Only admitted requests are counted, and the decision is taken inside one Lua script, so a refused
request never pushes the next allowed one further away: a client that waits exactly `Retry-After`
is served (unless it sent other requests meanwhile). Every answer carries the IETF draft headers
(`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, `RateLimit-Policy`).

A request whose answer is one hash field already in Redis (the latest quote) has that field read
by the same script call (`hit_reading`): one command instead of two, about a third of such a
request's cost in the api. On a Redis Cluster the field and the bucket live in different slots,
and a script may touch one slot only, so there it stays two commands (a pipeline would not save
much: the cluster client sends one per node, and its pipeline costs more than it saves).
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple, cast

from redis.asyncio import Redis

from stocktrack_common.redis_client import is_cluster
from stocktrack_common.redis_scripts import Script

WINDOW_SECONDS = 60

# KEYS[1]: current window counter, KEYS[2]: previous window counter.
# ARGV[1]: limit, ARGV[2]: elapsed ms in the current window, ARGV[3]: window ms, ARGV[4]: expiry s.
# Returns {admitted (0/1), current count after the decision, previous count}.
# With KEYS[3] and ARGV[5] (never on a cluster: another slot), HGET KEYS[3] ARGV[5] is appended.
_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local weight = 1 - tonumber(ARGV[2]) / tonumber(ARGV[3])
local admitted = 0
if previous * weight + current + 1 <= tonumber(ARGV[1]) then
  current = redis.call('INCR', KEYS[1])
  if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
  admitted = 1
end
if KEYS[3] then
  return {admitted, current, previous, redis.call('HGET', KEYS[3], ARGV[5])}
end
return {admitted, current, previous}
"""


class Decision(NamedTuple):
    """What the rate limit decided for one request; a tuple: one is built on every request."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    """Whole seconds until a request would be admitted (0 when this one was)."""
    reset: int
    """Whole seconds until the current window ends and its count starts to fade."""

    window: int = WINDOW_SECONDS

    def headers(self) -> dict[str, str]:
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.retry_after if not self.allowed else self.reset),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


def wait_seconds(
    current: int, previous: int, limit: int, elapsed: float, window: float = WINDOW_SECONDS
) -> float:
    """Exact time until `previous * overlap + current + 1 <= limit` holds again, nobody else asking.

    Within this window the previous count fades linearly; once the window ends, today's count
    becomes the fading one and the new window starts empty.
    """
    if current + 1 <= limit:
        # Only the previous window's weight is in the way; it fades before this window ends.
        return max(0.0, window * (1.0 - (limit - current - 1) / previous) - elapsed) if previous else 0.0
    if limit <= 0:
        return math.inf
    # Wait for the next window, then until this window's count has faded enough.
    return (window - elapsed) + window * max(0.0, 1.0 - (limit - 1) / current)


def decide(
    admitted: bool, current: int, previous: int, limit: int, elapsed: float, window: float = WINDOW_SECONDS
) -> Decision:
    """The client-facing figures for what the script decided; pure so it is tested without Redis."""
    estimate = previous * (1.0 - elapsed / window) + current
    remaining = max(0, math.floor(limit - estimate))
    reset = max(1, math.ceil(window - elapsed))
    if admitted:
        return Decision(True, limit, remaining, 0, reset, int(window))
    wait = wait_seconds(current, previous, limit, elapsed, window)
    return Decision(False, limit, 0, max(1, math.ceil(wait)), reset, int(window))


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str, window_seconds: int = WINDOW_SECONDS) -> None:
        self.redis = redis
        # Asked once: isinstance against the cluster client's typing.Protocol bases is slow.
        self.cluster = is_cluster(redis)
        self.prefix = prefix
        self.window = window_seconds
        self.script = Script(redis, _SCRIPT)

    def _call(self, bucket: str, limit: int, now: float) -> tuple[list[str], list[int | str], float]:
        """The script's keys and arguments for a hit at `now`, and the seconds elapsed in its window."""
        window = int(now // self.window)
        elapsed = now - window * self.window
        base = f"{self.prefix}:ratelimit:{{{bucket}}}:{self.window}"  # braces: one cluster slot
        keys = [f"{base}:{window}", f"{base}:{window - 1}"]
        return keys, [limit, int(elapsed * 1000), self.window * 1000, self.window * 2 + 5], elapsed

    def _decision(self, reply: list[int], limit: int, elapsed: float) -> Decision:
        admitted, current, previous = reply
        return decide(bool(int(admitted)), int(current), int(previous), limit, elapsed, self.window)

    async def _run(self, keys: list[str], args: list[int | str]) -> list[Any]:
        return list(await self.script(keys, args))

    async def hit(self, bucket: str, limit: int) -> Decision:
        keys, args, elapsed = self._call(bucket, limit, time.time())
        return self._decision(await self._run(keys, args), limit, elapsed)

    async def hit_reading(
        self, bucket: str, limit: int, key: str, field: str
    ) -> tuple[Decision, bytes | None]:
        """`hit`, and HGET `key` `field`: in the same script call on a single Redis."""
        if self.cluster:
            decision = await self.hit(bucket, limit)
            return decision, cast(bytes | None, await self.redis.hget(key, field))
        keys, args, elapsed = self._call(bucket, limit, time.time())
        *reply, value = await self._run([*keys, key], [*args, field])
        return self._decision(reply, limit, elapsed), value
