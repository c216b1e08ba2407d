"""Per-symbol state checkpoints in Redis hashes, so a restart resumes without a long warm-up.

Written in the same MULTI/EXEC as the batch's signals, so a checkpoint exists only for a batch
whose signals are out, and the signals of a batch are out only with its checkpoint. A crash after
the transaction and before the acknowledgement replays the batch; the restored state recognises
its ticks by stream id and skips them, so nothing is published twice.

Two hashes: the full state per symbol, and per symbol a small recent record that extends it
(symbol_state.py). Writing a symbol's full state removes its recent record in the same
transaction, so a recent record that exists always extends the full state next to it.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from stocktrack_common.stream_names import recommender_recent_key, recommender_state_key


class CheckpointStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = recommender_state_key(prefix)
        self.recent_key = recommender_recent_key(prefix)

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

    def save_in(self, pipe: Any, full: dict[str, bytes], recent: dict[str, bytes] | None = None) -> None:
        """Queue the save on the batch's transaction, so it commits with the signals or not at all.

        `full`: symbols whose full state is written (their recent records go); `recent`: symbols
        whose recent record is written on top of the full state already stored.
        """
        if full:
            pipe.hset(self.key, mapping=full)
            pipe.hdel(self.recent_key, *full)
        if recent:
            pipe.hset(self.recent_key, mapping=recent)
