"""Writer configuration."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stocktrack_common.settings import CommonSettings, SignalConsumerSettings, TickRetentionSettings


class WriterConsumerSettings(SignalConsumerSettings):
    """WRITER_*: a large tick batch amortises round trips (see bench/ingest.py)."""

    model_config = SettingsConfigDict(env_prefix="WRITER_")

    batch_size: int = Field(default=10_000, ge=1, le=50_000, description="tick entries per XREADGROUP")


class WriterSettings(CommonSettings, TickRetentionSettings):
    consumer: WriterConsumerSettings = Field(default_factory=WriterConsumerSettings)
    # How often the writer's roller recomputes the bar roll-ups of the buckets marked dirty: the
    # most the api's 5m/15m/1h/1d bars trail bars_1m, plus one round's recompute.
    rollup_interval_ms: int = Field(
        default=250, ge=10, le=60_000, description="pause between rounds of the bar roll-up worker"
    )
