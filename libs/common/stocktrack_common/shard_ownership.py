"""Which tick shards a stateful consumer replica (recommender, alerts) owns.

Indicators and crossings need every tick of a symbol, in order, in one process, so shards are
split between replicas statically rather than by the consumer group: an explicit list, else
shard k goes to replica k % count (the index from REPLICA_INDEX or the StatefulSet pod name's
ordinal), else every shard.
"""

from __future__ import annotations

import re

from stocktrack_common.settings import split_list


def owned_shards(
    *,
    tick_shards: int,
    explicit: str,
    explicit_name: str,
    replica_count: int | None,
    replica_index: int | None,
    consumer_name: str,
) -> list[int]:
    if explicit.strip():
        chosen = sorted({int(s) for s in split_list(explicit)})
        bad = [k for k in chosen if not 0 <= k < tick_shards]
        if bad:
            raise ValueError(f"{explicit_name} {bad} out of range for TICK_SHARDS={tick_shards}")
        return chosen
    if replica_count is None:
        return list(range(tick_shards))
    index = replica_index
    if index is None:
        match = re.search(r"-(\d+)$", consumer_name)
        if match is None:
            raise ValueError(
                "REPLICA_COUNT is set but neither REPLICA_INDEX nor a '-N' consumer name gives this replica's index"
            )
        index = int(match.group(1))
    if index >= replica_count:
        raise ValueError(f"replica index {index} is not below REPLICA_COUNT={replica_count}")
    return [k for k in range(tick_shards) if k % replica_count == index]
