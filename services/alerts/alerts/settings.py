"""Alerts worker configuration, and the tick shards it makes this replica evaluate.

Price and RSI conditions compare each tick with the symbol's previous one, so every tick of a
symbol must reach the same replica, in order: tick shards are split between replicas
statically (the way the recommender splits them), while signals, which need no state, are
shared by the whole consumer group.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stocktrack_common.settings import CommonSettings, SignalConsumerSettings
from stocktrack_common.shard_ownership import owned_shards as shared_owned_shards


class AlertsConsumerSettings(SignalConsumerSettings):
    """ALERTS_*: one group reads the owned tick shards and the signals stream."""

    model_config = SettingsConfigDict(env_prefix="ALERTS_")

    batch_size: int = Field(default=2000, ge=1, le=50_000, description="tick entries per XREADGROUP")


class AlertsSettings(CommonSettings):
    alerts_shards: str = Field(
        default="",
        pattern=r"^\s*(\d+\s*(,\s*\d+\s*)*)?$",
        description="tick shards this replica owns, e.g. '0,1'; empty = derive from replica index/count",
    )
    replica_index: int | None = Field(
        default=None, ge=0, description="this replica's ordinal; default: the consumer name's '-N' suffix"
    )
    replica_count: int | None = Field(default=None, ge=1, description="replicas sharing the tick shards")
    alerts_rules_refresh_seconds: float = Field(
        default=5.0, gt=0, description="how often rule changes made through the api are picked up"
    )
    alerts_max_event_age_seconds: float = Field(
        default=900.0,
        gt=0,
        description="events older than this (a long backlog) update state but never alert",
    )
    alerts_max_attempts: int = Field(
        default=6, ge=1, le=50, description="delivery attempts before dead-lettering"
    )
    alerts_retry_base_seconds: float = Field(
        default=2.0, gt=0, description="first retry delay; doubles per attempt"
    )
    alerts_retry_max_seconds: float = Field(default=300.0, gt=0)
    alerts_http_timeout_seconds: float = Field(default=10.0, gt=0)
    alerts_allow_private_targets: bool = Field(
        default=False, description="allow webhooks to loopback/private addresses (local receivers)"
    )
    alerts_sender_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often due retries are looked for when nothing new arrived"
    )
    alerts_sender_concurrency: int = Field(default=10, ge=1, le=200)
    consumer: AlertsConsumerSettings = Field(default_factory=AlertsConsumerSettings)


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
