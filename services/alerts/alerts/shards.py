"""Which tick shards this replica evaluates.

Price and RSI conditions compare each tick with the symbol's previous one, so every tick of a
symbol must reach the same replica, in order: tick shards are split between replicas
statically (the way the recommender splits them), while signals, which need no state, are
shared by the whole consumer group.
"""

from __future__ import annotations

import re

from alerts.settings import AlertsSettings


def owned_shards(settings: AlertsSettings) -> list[int]:
    """ALERTS_SHARDS when given, else shard k for replica k % REPLICA_COUNT, else every shard.

    The replica index comes from REPLICA_INDEX or the '-N' suffix of the consumer name (a
    StatefulSet pod name).
    """
    shards = settings.tick_shards
    if settings.alerts_shards.strip():
        chosen = sorted({int(s) for s in settings.alerts_shards.split(",") if s.strip()})
        bad = [k for k in chosen if k >= shards]
        if bad:
            raise ValueError(f"ALERTS_SHARDS {bad} out of range for TICK_SHARDS={shards}")
        return chosen
    if settings.replica_count is None:
        return list(range(shards))
    index = settings.replica_index
    if index is None:
        match = re.search(r"-(\d+)$", settings.consumer_name)
        if match is None:
            raise ValueError(
                "REPLICA_COUNT is set but neither REPLICA_INDEX nor a '-N' consumer name gives the index"
            )
        index = int(match.group(1))
    if index >= settings.replica_count:
        raise ValueError(f"replica index {index} is not below REPLICA_COUNT={settings.replica_count}")
    return [k for k in range(shards) if k % settings.replica_count == index]
