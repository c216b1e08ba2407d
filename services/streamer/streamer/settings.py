"""Streamer configuration."""

from __future__ import annotations

from pydantic import Field

from stocktrack_common.http_cors import CorsOrigins
from stocktrack_common.settings import MAX_BLOCK_MS, ApiKeySettings, BarCloseSettings, CommonSettings
from streamer.send_limits import SendLimits


class StreamerSettings(CommonSettings, ApiKeySettings, BarCloseSettings):
    cors_origins: CorsOrigins = Field(
        default_factory=list, description="origins allowed by CORS ('*' for any); empty = CORS off"
    )
    streamer_client_queue: int = Field(
        default=5000, ge=10, description="events a client may fall behind before it is dropped"
    )
    streamer_send_buffer_bytes: int = Field(
        default=256 * 1024,
        ge=4096,
        description="per-connection cap on the kernel send buffer and the transport's buffer",
    )
    streamer_send_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a send must be taken (buffer back under the cap) within this, or the client is dropped",
    )
    streamer_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="idle interval between heartbeats"
    )
    streamer_ring_size: int = Field(
        default=50_000, ge=0, description="recent events kept in memory for exact, fast resumes"
    )
    streamer_max_replay: int = Field(
        default=200_000, ge=1, description="most stream entries a resume may replay from Redis"
    )
    streamer_read_count: int = Field(default=1000, ge=1, description="entries per XREAD per stream")
    streamer_block_ms: int = Field(default=1000, ge=1, le=MAX_BLOCK_MS)

    def send_limits(self) -> SendLimits:
        return SendLimits(self.streamer_send_buffer_bytes, self.streamer_send_timeout_seconds)
