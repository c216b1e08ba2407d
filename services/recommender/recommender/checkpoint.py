"""Per-symbol state checkpoints in Redis hashes, so a restart resumes without a long warm-up.

Written by the same Lua script call as the batch's signals (`commit`), so a checkpoint exists only
for a batch whose signals are out, and the signals of a batch are out only with its checkpoint. A crash after
the transaction and before the acknowledgement replays the batch; the restored state recognises
its ticks by stream id and skips them, so nothing is published twice.

Two hashes: the full state per symbol, and per symbol a small recent record that extends it
(symbol_state.py). Writing a symbol's full state removes its recent record in the same
script call, so a recent record that exists always extends the full state next to it.

One script call rather than a MULTI/EXEC of one command per signal and hash: a bar close where all
500 symbols signal was a transaction of ~1,000 commands, and redis-py's handling of each queued
command and its reply was a large part of that close's CPU time. The script does the same XADDs
and HSETs inside Redis, atomically like the transaction, and answers once. Its keys, the signals
stream and both hashes, share the `{signals}` hash tag: one slot on a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis

from stocktrack_common.redis_scripts import Script
from stocktrack_common.stream_names import recommender_recent_key, recommender_state_key

# KEYS[1]: the signals stream, KEYS[2]: the full states, KEYS[3]: the recent records.
# ARGV: the number of signals, then per signal its field count (names and values) and the fields;
# then the number of full states and symbol, state pairs; then the same for recent records.
# Full states remove their symbols' recent records. Long argument lists go in chunks: Lua's
# unpack is bounded by its C stack (LUAI_MAXCSTACK, 8000 values).
_COMMIT = """
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
local function pairs_of(key, also_delete)
  local n = 2 * tonumber(ARGV[i])
  local first = i + 1
  i = first + n
  for from = first, first + n - 1, 1000 do
    local to = math.min(from + 999, first + n - 1)
    redis.call('HSET', key, unpack(ARGV, from, to))
    if also_delete then
      local names = {}
      for j = from, to, 2 do names[#names + 1] = ARGV[j] end
      redis.call('HDEL', also_delete, unpack(names))
    end
  end
end
pairs_of(KEYS[2], KEYS[3])
pairs_of(KEYS[3], nil)
return 1
"""


class CheckpointStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = recommender_state_key(prefix)
        self.recent_key = recommender_recent_key(prefix)
        self._commit = Script(client, _COMMIT)

    async def load_many(
        self, symbols: list[str]
    ) -> dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]:
        """Each symbol's full state and the recent record on top of it (either may be None), in one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.key, symbols)
            pipe.hmget(self.recent_key, symbols)
            fulls, recents = await pipe.execute()
        return {
            symbol: (
                None if full is None else orjson.loads(full),
                None if recent is None else orjson.loads(recent),
            )
            for symbol, full, recent in zip(symbols, fulls, recents, strict=True)
        }

    async def commit(
        self,
        stream: str,
        signals: Iterable[Mapping[str, str]],
        full: dict[str, bytes],
        recent: dict[str, bytes] | None = None,
    ) -> None:
        """Append `signals` (stream field lists) to `stream` and save the states: all or nothing.

        `full`: symbols whose full state is written (their recent records go); `recent`: symbols
        whose recent record is written on top of the full state already stored.
        """
        args: list[str | bytes | int] = [0]
        count = 0
        for fields in signals:
            count += 1
            args.append(2 * len(fields))
            for name, value in fields.items():
                args.append(name)
                args.append(value)
        args[0] = count
        for states in (full, recent or {}):
            args.append(len(states))
            for symbol, state in states.items():
                args.append(symbol)
                args.append(state)
        await self._commit([stream, self.key, self.recent_key], args)
