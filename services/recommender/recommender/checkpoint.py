"""Per-symbol state checkpoints in one Redis hash, so a restart resumes without a long warm-up.

Written in the same MULTI/EXEC as the batch's signals, so a checkpoint exists only for a batch
whose signals are out, and the signals of a batch are out only with its checkpoint. A crash after
the transaction and before the acknowledgement replays the batch; the restored state recognises
its ticks by stream id and skips them, so nothing is published twice.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from stocktrack_common.stream_names import recommender_state_key


class CheckpointStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = recommender_state_key(prefix)

    async def load(self, symbol: str) -> dict[str, Any] | None:
        raw = await self.client.hget(self.key, symbol)
        return None if raw is None else orjson.loads(raw)

    def save_in(self, pipe: Any, states: dict[str, bytes]) -> None:
        """Queue the save (each symbol's state as JSON) on the batch's transaction, so it commits
        with the signals or not at all."""
        if states:
            pipe.hset(self.key, mapping=states)
