"""Recommender configuration (environment variables, upper-cased field names)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from stocktrack_common.settings import BarCloseSettings, CommonSettings, ConsumerSettings
from stocktrack_common.shard_ownership import owned_shards as shared_owned_shards


class RecommenderConsumerSettings(ConsumerSettings):
    """RECOMMENDER_BATCH_SIZE, RECOMMENDER_BLOCK_MS, RECOMMENDER_CLAIM_IDLE_MS."""

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_")


class RecommenderSettings(CommonSettings, BarCloseSettings):
    recommender_shards: str = Field(
        default="",
        pattern=r"^\s*(\d+\s*(,\s*\d+\s*)*)?$",
        description="tick shards this replica owns, e.g. '0,1'; empty = derive from replica index/count",
    )
    replica_index: int | None = Field(
        default=None, ge=0, description="this replica's ordinal; default: the consumer name's '-N' suffix"
    )
    replica_count: int | None = Field(default=None, ge=1, description="replicas sharing the shards")
    bar_interval_seconds: int = Field(default=60, ge=1, le=86_400)
    daily_signals: Literal["close", "update"] = Field(
        default="close",
        description="daily models signal when the day closes, or also on each rule bar with the day so far",
    )
    daily_warmup_days: int = Field(default=260, ge=0, le=5_000, description="daily bars read on cold start")
    warmup_bars: int = Field(
        default=300, ge=0, le=10_000, description="bars read from Postgres on cold start"
    )
    rules_config: Path | None = Field(default=None, description="rules TOML; default: the shipped file")
    consumer: RecommenderConsumerSettings = Field(default_factory=RecommenderConsumerSettings)

    @model_validator(mode="after")
    def _index_in_range(self) -> Self:
        if (
            self.replica_index is not None
            and self.replica_count is not None
            and self.replica_index >= self.replica_count
        ):
            raise ValueError("replica_index must be below replica_count")
        return self


def owned_shards(settings: RecommenderSettings) -> list[int]:
    """The tick shards this replica consumes (RECOMMENDER_SHARDS, else by REPLICA_COUNT, else all)."""
    return shared_owned_shards(
        tick_shards=settings.tick_shards,
        explicit=settings.recommender_shards,
        explicit_name="RECOMMENDER_SHARDS",
        replica_count=settings.replica_count,
        replica_index=settings.replica_index,
        consumer_name=settings.consumer_name,
    )
