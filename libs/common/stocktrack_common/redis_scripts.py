"""Lua scripts called by EVALSHA, loaded again where Redis lacks them (first use, a restart, a failover).

Scripts stay within Redis 6.2 (EVAL/EVALSHA, no functions) and, for Redis Cluster, touch keys
of one slot only (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class Script:
    """One Lua script on one client.

    What redis-py's Script.__call__ does, without its isinstance check against Pipeline (a class
    with typing.Protocol bases): a tenth of a rate-limited request's time in a profile of the api.
    """

    def __init__(self, redis: Redis, source: str) -> None:
        self.redis = redis
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.sha = await self.redis.script_load(self.source)
            return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
