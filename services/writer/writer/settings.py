"""Writer configuration."""

from __future__ import annotations

from pydantic import Field

from stocktrack_common.settings import CommonSettings, TickRetentionSettings


class WriterSettings(CommonSettings, TickRetentionSettings):
    writer_batch_size: int = Field(default=10_000, ge=1, le=50_000, description="entries per XREADGROUP")
    writer_block_ms: int = Field(default=1000, ge=1)
    writer_claim_idle_ms: int = Field(default=60_000, ge=1000, description="reclaim entries idle this long")
