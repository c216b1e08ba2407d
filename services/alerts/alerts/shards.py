"""Which tick shards this replica evaluates.

Price and RSI conditions compare each tick with the symbol's previous one, so every tick of a
symbol must reach the same replica, in order: tick shards are split between replicas
statically (the way the recommender splits them), while signals, which need no state, are
shared by the whole consumer group.
"""

from __future__ import annotations

from alerts.settings import AlertsSettings
from stocktrack_common.shard_ownership import owned_shards as shared_owned_shards


def owned_shards(settings: AlertsSettings) -> list[int]:
    """ALERTS_SHARDS when given, else this replica's share by REPLICA_COUNT, else every shard."""
    return shared_owned_shards(
        tick_shards=settings.tick_shards,
        explicit=settings.alerts_shards,
        explicit_name="ALERTS_SHARDS",
        replica_count=settings.replica_count,
        replica_index=settings.replica_index,
        consumer_name=settings.consumer_name,
    )
