"""Janitor configuration: retention windows, look-ahead, batch sizes and stream tails."""

from __future__ import annotations

from pydantic import Field

from stocktrack_common.settings import CommonSettings, TickRetentionSettings


class JanitorSettings(CommonSettings, TickRetentionSettings):
    bar_retention_days: int = Field(
        default=365, ge=1, description="days of bars_1m and its roll-ups (5m, 15m, 1h, 1d) kept"
    )
    rollup_reconcile_days: int = Field(
        default=2,
        ge=0,
        description="UTC days (today included) whose bar roll-ups `retention` recomputes from bars_1m; 0 skips",
    )
    signal_retention_days: int | None = Field(
        default=None, ge=1, description="days of signals kept; unset keeps them all"
    )
    daily_bar_retention_days: int | None = Field(
        default=None, ge=1, description="days of daily_bars kept; unset keeps them all"
    )
    partitions_ahead_days: int = Field(default=7, ge=0, description="future days with a tick partition ready")
    retention_batch_size: int = Field(
        default=10_000, ge=1, description="rows per DELETE batch, so no transaction grows unbounded"
    )
    vacuum_recent_partitions: int = Field(
        default=2, ge=0, description="newest tick partitions vacuumed (today, yesterday, ...)"
    )
    stream_keep: int = Field(
        default=10_000, ge=1, description="newest entries every stream keeps for resumes"
    )
    dead_stream_keep: int = Field(
        default=100_000, ge=1, description="newest dead-letter entries kept for inspection"
    )
    consumer_idle_delete_hours: float = Field(
        default=24.0, gt=0, description="delete group consumers idle this long that hold nothing pending"
    )
    models_keep: int = Field(default=5, ge=0, description="newest models kept besides the active one")
    lock_wait_seconds: float = Field(
        default=0.0, ge=0, description="wait this long for a running task's lock; 0 skips at once"
    )
    connect_attempts: int = Field(default=5, ge=1, description="tries to reach PostgreSQL/Redis at start")
