"""Recommender configuration (environment variables, upper-cased field names)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from stocktrack_common.settings import CommonSettings


class RecommenderSettings(CommonSettings):
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
    warmup_bars: int = Field(
        default=300, ge=0, le=10_000, description="bars read from Postgres on cold start"
    )
    rules_config: Path | None = Field(default=None, description="rules TOML; default: the shipped file")
    recommender_batch_size: int = Field(default=500, ge=1, le=50_000)
    recommender_block_ms: int = Field(default=1000, ge=1)
    recommender_claim_idle_ms: int = Field(default=60_000, ge=1000)

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
    """The tick shards this replica consumes.

    One symbol's ticks must reach one consumer, in order, so shards are split between replicas
    statically: an explicit RECOMMENDER_SHARDS list, else shard k goes to replica k % count
    (index from REPLICA_INDEX or the StatefulSet pod name's ordinal), else every shard.
    """
    shards = settings.tick_shards
    if settings.recommender_shards.strip():
        chosen = sorted({int(s) for s in settings.recommender_shards.split(",") if s.strip()})
        bad = [k for k in chosen if k >= shards]
        if bad:
            raise ValueError(f"RECOMMENDER_SHARDS {bad} out of range for TICK_SHARDS={shards}")
        return chosen
    if settings.replica_count is None:
        return list(range(shards))
    index = settings.replica_index
    if index is None:
        match = re.search(r"-(\d+)$", settings.consumer_name)
        if match is None:
            raise ValueError(
                "REPLICA_COUNT is set but neither REPLICA_INDEX nor a '-N' consumer name says which replica this is"
            )
        index = int(match.group(1))
    if index >= settings.replica_count:
        raise ValueError(f"replica index {index} is not below REPLICA_COUNT={settings.replica_count}")
    return [k for k in range(shards) if k % settings.replica_count == index]
