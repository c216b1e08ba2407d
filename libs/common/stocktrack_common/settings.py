"""Settings every service reads from the environment (pydantic-settings).

Services subclass CommonSettings and add their own fields. Settings are built in each
service's main(), never at import time, so tests construct them with explicit values.
"""

from __future__ import annotations

import re
import socket
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stocktrack_common.messages import SYMBOL_PATTERN

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def split_list(value: Any) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']: the one reading of a comma-separated list.

    Environment variables, CLI options and query strings carry lists as text; a value that is
    already a list (tests, JSON, a dotenv parser) gets the same cleaning. Items are stripped,
    empty ones dropped, order and case kept: callers normalise case for what they hold.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        items = [value]
    return [text for text in (str(item).strip() for item in items) if text]


def parse_symbol_list(value: Any) -> list[str]:
    """Accept 'AAPL, msft' or a list; normalise to upper case and reject malformed symbols."""
    symbols: list[str] = []
    for item in split_list(value):
        symbol = item.upper()
        if not _SYMBOL_RE.match(symbol):
            raise ValueError(f"invalid symbol: {symbol!r}")
        if symbol not in symbols:
            symbols.append(symbol)
    return symbols


class CommonSettings(BaseSettings):
    """Configuration shared by every service (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis connection URL (may carry a password, so it is a secret)",
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/stocktrack"),
        description="PostgreSQL connection URL (may carry a password, so it is a secret)",
    )
    stream_prefix: str = Field(
        default="stocktrack", pattern=r"^[A-Za-z0-9_.:\-]{1,64}$", description="prefix of every Redis key"
    )
    tick_shards: int = Field(default=4, ge=1, le=1024, description="number of tick shard streams")
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA"],
        description="watch list, comma separated",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_format: str = Field(default="json", pattern=r"^(json|console)$", description="json or console")
    http_port: int = Field(default=8080, ge=0, le=65535, description="port of the api/streamer")
    metrics_port: int = Field(default=9100, ge=0, le=65535, description="probe/metrics port of workers")
    metrics_host: str = Field(default="0.0.0.0", description="address the worker probe server binds")
    consumer_name: str = Field(
        default_factory=socket.gethostname,
        description="stable consumer name per pod (the pod name, via the downward API)",
    )
    max_deliveries: int = Field(default=5, ge=1, description="deliveries before an entry is dead-lettered")
    db_pool_min: int = Field(default=1, ge=0, description="smallest PostgreSQL pool")
    db_pool_max: int = Field(default=10, ge=1, description="largest PostgreSQL pool")
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0, description="bound on the drain at SIGTERM")

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> list[str]:
        return parse_symbol_list(value)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level
