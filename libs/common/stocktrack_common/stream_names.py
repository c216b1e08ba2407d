"""Redis key names (docs/architecture.md), in one place so no service spells them differently.

Every key starts with the configurable prefix and carries a Redis Cluster hash tag (the part in
braces), so that what one command, Lua script or MULTI/EXEC touches lives in one slot:
a tick shard stream is tagged with its shard number; the signals stream shares the tag
`{signals}` with the recommender's checkpoint hash, which is written by the same script call.
"""

from __future__ import annotations

import zlib

# Consumer groups: every reader of a stream that must see each entry once reads in one of these.
WRITER_GROUP = "writer"  # tick shards, the signals and amendments streams -> PostgreSQL
RECOMMENDER_GROUP = "recommender"  # owned tick shards -> signals
ALERTS_GROUP = "alerts"  # the signals stream and owned tick shards -> alert deliveries


def shard_for(symbol: str, shards: int) -> int:
    """Stable shard of a symbol: crc32 is the same in every process and language, unlike hash()."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return zlib.crc32(symbol.encode("utf-8")) % shards


def tick_stream(prefix: str, shard: int) -> str:
    return f"{prefix}:ticks:{{{shard}}}"


def tick_streams(prefix: str, shards: int) -> list[str]:
    return [tick_stream(prefix, k) for k in range(shards)]


SIGNALS_TAG = "{signals}"


def signals_stream(prefix: str) -> str:
    return f"{prefix}:{SIGNALS_TAG}"


def recommender_state_key(prefix: str) -> str:
    """Hash symbol -> checkpoint; in the signals stream's slot (one script call writes both)."""
    return f"{prefix}:{SIGNALS_TAG}:recommender:state"


def amendments_stream(prefix: str) -> str:
    """Trade corrections and cancels (TradeAmendment), applied to stored ticks and bars by the writer.

    One stream, not one per shard: amendments are rare, and the writer applies each by the
    trade's id whenever it arrives, before or after its trade, so it needs no order with ticks.
    """
    return f"{prefix}:amendments"


def recommender_recent_key(prefix: str) -> str:
    """Hash symbol -> the recent record on top of its checkpoint; same slot, same script call."""
    return f"{prefix}:{SIGNALS_TAG}:recommender:recent"


def dead_stream(prefix: str) -> str:
    return f"{prefix}:dead"


def models_stream(prefix: str) -> str:
    return f"{prefix}:models"


def latest_quotes_key(prefix: str) -> str:
    """Hash symbol -> JSON of the newest tick persisted; the api's fast path for latest quotes."""
    return f"{prefix}:latest"


def consumer_presence_key(prefix: str, group: str, consumer: str) -> str:
    """Set with a TTL by a running consumer's loop: the janitor never deletes a consumer that has one.

    XINFO's idle time cannot tell a departed pod from a live reader blocked on a quiet stream.
    """
    return f"{prefix}:presence:{group}:{consumer}"
