"""The newest persisted tick per symbol, kept in a Redis hash for the api's latest-quote path.

Only newer ticks replace older ones (compared inside Redis with a script), so concurrent
writers and redeliveries can never move a quote backwards in time.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from writer.tick_sink import NewestTick

# KEYS[1]: the hash; ARGV: symbol, ts, json, symbol, ts, json, ...
SET_IF_NEWER = """
local updated = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if current then
    local ok, decoded = pcall(cjson.decode, current)
    if ok and tonumber(decoded['ts']) >= tonumber(ARGV[i + 1]) then newer = false end
  end
  if newer then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    updated = updated + 1
  end
end
return updated
"""


def quote_json(tick: NewestTick) -> bytes:
    return orjson.dumps(
        {
            "symbol": tick.symbol,
            "ts": tick.ts,
            "price": tick.price,
            "size": tick.size,
            "source": tick.source,
        }
    )


class LatestQuotes:
    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self.key = key
        self.script = redis.register_script(SET_IF_NEWER)

    async def update(self, newest: Sequence[NewestTick]) -> int:
        if not newest:
            return 0
        args: list[str | bytes | int] = []
        for tick in newest:
            args += [tick.symbol, tick.ts, quote_json(tick)]
        return int(await self.script(keys=[self.key], args=args))
