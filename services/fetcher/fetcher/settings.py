"""Fetcher configuration: which provider feeds the tick streams, and how fast.

A market-data provider's own settings (keys, URLs, limits, plan) live in its module
(`providers/<name>.py`, e.g. ALPACA_* in `AlpacaSettings`), read when it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from stocktrack_common.settings import CommonSettings, parse_symbol_list, split_list


def _parse_provider_list(value: Any) -> list[str]:
    return [item.lower() for item in split_list(value)]


def _parse_routes(value: Any) -> dict[str, list[str]]:
    """'AAPL=alpaca,finnhub;MSFT=alphavantage' -> {'AAPL': ['alpaca', 'finnhub'], 'MSFT': ['alphavantage']}."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k).upper(): _parse_provider_list(v) for k, v in value.items()}
    routes: dict[str, list[str]] = {}
    for part in str(value).split(";"):
        if not part.strip():
            continue
        symbol, sep, providers = part.partition("=")
        if not sep:
            raise ValueError(f"route {part!r} is not SYMBOL=provider,provider")
        (name,) = parse_symbol_list(symbol)
        routes[name] = _parse_provider_list(providers)
    return routes


class FetcherSettings(CommonSettings):
    provider: str = Field(default="sim", description="tick source: sim, replay, or a market-data provider")
    sim_ticks_per_second: float = Field(default=20.0, gt=0)
    sim_seed: int = 42
    sim_volatility_scale: float = Field(default=30.0, gt=0)
    sim_max_ticks: int | None = Field(
        default=None, ge=1, description="stop after this many ticks (tests, demos)"
    )

    # Publishing (tick_buffer.py): what a Redis outage may hold, and how long shutdown waits for Redis.
    fetcher_buffer_max_ticks: int = Field(
        default=100_000, ge=1, description="ticks held while Redis is unreachable; beyond it the oldest drop"
    )
    fetcher_publish_retry_max_seconds: float = Field(
        default=5.0, gt=0, description="cap of the jittered backoff between publish attempts"
    )
    fetcher_shutdown_flush_seconds: float = Field(
        default=10.0, ge=0, description="on SIGTERM, how long buffered ticks may wait for Redis"
    )

    # Polling providers and failover.
    provider_chain: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="ordered providers tried for every symbol when PROVIDER=failover (first that answers wins)",
    )
    provider_routes: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, description="per-symbol provider order, 'AAPL=alpaca,finnhub;MSFT=alphavantage'"
    )
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    http_max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_reset_seconds: float = Field(default=60.0, gt=0)

    # Market hours.
    market_calendar: str = Field(
        default="XNYS", description="exchange_calendars code of the listing exchange"
    )
    market_session: Literal["regular", "extended", "always"] = Field(
        default="regular", description="poll during regular hours, extended (04:00-20:00 ET) or always"
    )

    # Watch list.
    watchlist_from_db: bool = Field(default=True, description="add the active rows of the symbols table")
    watchlist_reload_seconds: float = Field(default=60.0, gt=0)

    # Replay.
    replay_path: Path | None = Field(default=None, description="CSV or Parquet file of ticks or bars")
    replay_speed: float = Field(
        default=1.0, ge=0, description="60 = one recorded minute per second; 0 = no pauses"
    )
    replay_kind: Literal["auto", "ticks", "bars"] = "auto"
    replay_bar_seconds: float = Field(default=60.0, gt=0, description="length of one bar in a bar file")
    replay_max_pause_seconds: float | None = Field(
        default=None, gt=0, description="cap on one pause, so overnight gaps do not stall a demo"
    )
    replay_shift_to_now: bool = Field(default=False, description="move the recording so it starts now")

    @field_validator("provider_chain", mode="before")
    @classmethod
    def _split_chain(cls, value: Any) -> list[str]:
        return _parse_provider_list(value)

    @field_validator("provider_routes", mode="before")
    @classmethod
    def _split_routes(cls, value: Any) -> dict[str, list[str]]:
        return _parse_routes(value)
