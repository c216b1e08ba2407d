"""Request rate limits shared by every api replica, kept in Redis.

A sliding window approximated from two fixed one-minute windows (the current count plus the
previous count weighted by how much of it still overlaps): one round trip and two small keys
per client, without the double burst a plain fixed window allows at each boundary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

WINDOW_SECONDS = 60

# KEYS[1]: current window counter, KEYS[2]: previous window counter; ARGV[1]: expiry seconds.
_SCRIPT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
return {current, previous}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int
    remaining: int


def decide(
    current: int, previous: int, limit: int, elapsed: float, window: float = WINDOW_SECONDS
) -> Decision:
    """Whether request number `current` of this window fits; pure so it is tested without Redis."""
    overlap = 1.0 - elapsed / window
    estimate = previous * overlap + current
    if estimate <= limit:
        return Decision(True, 0, max(0, int(limit - estimate)))
    if current > limit or previous == 0:
        wait = window - elapsed
    else:
        # The previous window's weight decays linearly; wait until the estimate fits again.
        wait = window * (1.0 - (limit - current) / previous) - elapsed
    return Decision(False, max(1, math.ceil(wait)), 0)


class RateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.prefix = prefix
        self.script = redis.register_script(_SCRIPT)

    async def hit(self, bucket: str, limit: int) -> Decision:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        elapsed = now - window * WINDOW_SECONDS
        base = f"{self.prefix}:ratelimit:{{{bucket}}}"  # braces: both windows in one cluster slot
        current, previous = await self.script(
            keys=[f"{base}:{window}", f"{base}:{window - 1}"], args=[WINDOW_SECONDS * 2 + 5]
        )
        return decide(int(current), int(previous), limit, elapsed)
