"""Settings every service reads from the environment (pydantic-settings).

Services subclass CommonSettings and add their own fields; groups of fields that one component
reads together are nested sub-models (`db`, `emf`, a worker's `consumer`), each a BaseSettings
with its own env prefix so the variable names stay flat (`DB_POOL_MAX`, `WRITER_BATCH_SIZE`).
The whole tree is built once, in each service's main() (or by a test with explicit values),
never at import time and never deep inside a module.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from typing import Annotated, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stocktrack_common.emf import EmfSettings
from stocktrack_common.messages import SYMBOL_PATTERN

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


PREFIX_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def check_redis_url(url: str) -> str:
    """Refuse what redis-py would refuse later, deep inside a connection attempt, with a clear reason."""
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return url


def check_database_url(url: str) -> str:
    """Parse the URL the way libpq will, so a typo fails at start with libpq's own message."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"not a PostgreSQL connection string: {str(exc).splitlines()[0]}") from None
    ports = str(params.get("port") or "5432").split(",")
    if not all(p.strip().isdigit() and 0 < int(p) < 65536 for p in ports):
        raise ValueError(f"port {params.get('port')!r} is not a port number")
    if "://" in url and not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("must start with postgresql:// (or be a libpq key=value string)")
    return url


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


# The longest a blocking stream read may wait: well below the socket timeout every Redis command
# runs under (30 s, redis_client.py), which would otherwise fail a quiet stream's read.
MAX_BLOCK_MS = 20_000


class PoolSettings(BaseSettings):
    """One service's PostgreSQL pool (DB_*): its size, what a session may hold, how fast it comes back."""

    model_config = SettingsConfigDict(env_prefix="DB_", extra="ignore", case_sensitive=False)

    pool_min: int = Field(default=1, ge=0, description="smallest PostgreSQL pool")
    pool_max: int = Field(default=10, ge=1, description="largest PostgreSQL pool")
    statement_timeout_seconds: float = Field(
        default=30.0, ge=0, description="server cancels a statement running longer (0 = no limit)"
    )
    idle_in_transaction_timeout_seconds: float = Field(
        default=60.0, ge=0, description="server ends a session idle inside a transaction this long (0 = off)"
    )
    reconnect_max_delay_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="longest pause between reconnect attempts while the server is down",
    )


class ConsumerSettings(BaseSettings):
    """How a worker's StreamConsumer reads, retries and dead-letters; one sub-model per service.

    Each worker subclasses it with its own env prefix (WRITER_, RECOMMENDER_, ALERTS_) for the
    read sizes; the fields with an explicit alias are shared by every worker under one name.
    """

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", case_sensitive=False, validate_by_name=True
    )

    batch_size: int = Field(default=500, ge=1, le=50_000, description="entries per XREADGROUP")
    block_ms: int = Field(
        default=1000,
        ge=1,
        le=MAX_BLOCK_MS,
        description="how long a read waits for new entries (at most 20000: below Redis' 30 s socket timeout)",
    )
    claim_idle_ms: int = Field(default=60_000, ge=1000, description="reclaim entries idle this long")
    max_deliveries: int = Field(
        default=5,
        ge=1,
        validation_alias="max_deliveries",
        description="deliveries before an entry is dead-lettered",
    )
    retry_backoff_base_seconds: float = Field(
        default=0.2,
        gt=0,
        validation_alias="consumer_retry_base_seconds",
        description="first pause after a transient error (doubles per attempt, full jitter)",
    )
    retry_backoff_cap_seconds: float = Field(
        default=5.0, gt=0, validation_alias="consumer_retry_max_seconds", description="longest such pause"
    )
    stuck_after_seconds: float = Field(
        default=300.0,
        gt=0,
        validation_alias="consumer_stuck_seconds",
        description="retrying a transient error longer than this fails /healthz, so the pod is restarted",
    )


class SignalConsumerSettings(ConsumerSettings):
    """A worker that also reads the signals stream (writer, alerts) sizes those reads apart from its ticks."""

    signal_batch_size: int = Field(default=500, ge=1, le=50_000, description="signal entries per XREADGROUP")


class CommonSettings(BaseSettings):
    """Configuration shared by every service (see the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis connection URL (may carry a password, so it is a secret)",
    )
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL names a node of a Redis Cluster (cluster mode enabled): use the cluster client",
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/stocktrack"),
        description="PostgreSQL connection URL (may carry a password, so it is a secret)",
    )
    stream_prefix: str = Field(
        default="stocktrack", pattern=PREFIX_PATTERN, description="prefix of every Redis key"
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
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0, description="bound on the drain at SIGTERM")
    db: PoolSettings = Field(default_factory=PoolSettings, description="DB_* variables")
    emf: EmfSettings = Field(default_factory=EmfSettings, description="EMF_* variables")

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> list[str]:
        return parse_symbol_list(value)

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: SecretStr) -> SecretStr:
        check_redis_url(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: SecretStr) -> SecretStr:
        check_database_url(value.get_secret_value())
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level


class TickRetentionSettings(BaseSettings):
    """How long tick partitions live: the janitor drops older days, the writer refuses ticks for them.

    One field read by both, so the day the janitor drops and the day the writer stops accepting can
    never disagree.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    tick_retention_days: int = Field(
        default=30, ge=1, le=36_500, description="UTC days of tick partitions kept, today included"
    )


def first_retained_day(today: dt.date, retention_days: int) -> dt.date:
    """The oldest UTC day whose tick partition is kept (`retention_days` days, today included)."""
    return today - dt.timedelta(days=retention_days - 1)


class ApiKeySettings(BaseSettings):
    """How the api and the streamer check API keys: one definition, so both honour the same keys."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    api_read_requires_key: bool = Field(
        default=False, description="when true, read endpoints also need an API key with the read scope"
    )
    api_key_pepper: SecretStr = Field(
        default=SecretStr(""),
        description="server secret mixed into API key hashes (HMAC-SHA256); must be set for keys to work",
    )
    api_key_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a looked-up key is trusted before asking PostgreSQL again"
    )


class BarCloseSettings(BaseSettings):
    """When a live bar closes after its end: one grace for the recommender's bars and the streamer's.

    Both close bars on a timer (stocktrack_common.bar_closing); one setting keeps the `bar` events
    clients see and the bars signals are computed on closed by the same rule.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    bar_close_grace_ms: int = Field(
        default=20,
        ge=0,
        le=60_000,
        description="a bar closes this long after its end; a later tick of it is late (counted, skipped)",
    )
