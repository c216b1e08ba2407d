"""What the api runs with: its configuration from the environment (limits, auth, rate limiting,
CORS) and the typed keys under which the app factory stores the settings, pools and clients."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode
from redis.asyncio import Redis

from api.http.cursors import CursorSigner
from stocktrack_common.http_cors import CorsOrigins
from stocktrack_common.settings import ApiKeySettings, CommonSettings, check_database_url, split_list

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ApiSettings(CommonSettings, ApiKeySettings):
    api_max_limit: int = Field(default=5000, ge=1, description="largest page a client may ask for")
    api_default_limit: int = Field(default=500, ge=1)
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger request bodies get 413")
    cursor_secret: SecretStr = Field(
        default=SecretStr(""),
        description="key that signs pagination cursors (HMAC-SHA256); empty = derived from API_KEY_PEPPER, "
        "and with neither set a random key per process (cursors then fail after a restart or on another replica)",
    )
    rate_limit_ip_per_minute: int = Field(
        default=1200, ge=0, description="requests per minute per client IP; 0 = off"
    )
    rate_limit_key_per_minute: int = Field(
        default=6000, ge=0, description="requests per minute per API key; 0 = off"
    )
    trusted_proxies: Annotated[list[IpNetwork], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of proxies whose X-Forwarded-For is believed; empty = use the peer address",
    )
    cors_origins: CorsOrigins = Field(
        default_factory=list, description="origins allowed by CORS ('*' for any); empty = CORS off"
    )
    database_read_url: SecretStr | None = Field(
        default=None,
        description="a streaming replica for history reads (ticks, bars, indicators, signal lists); unset = primary",
    )
    alerts_allow_private_targets: bool = Field(
        default=False,
        description="accept alert targets on loopback/private addresses (the alerts worker's setting)",
    )
    dashboard_stream_url: str | None = Field(
        default=None,
        description="where the dashboard's browser connects for live events; unset = page host, port 8081",
    )

    @field_validator("database_read_url")
    @classmethod
    def _valid_read_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_database_url(value.get_secret_value())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[IpNetwork]:
        return [ipaddress.ip_network(item, strict=False) for item in split_list(value)]


POOL: web.AppKey[AsyncConnectionPool] = web.AppKey("pool", AsyncConnectionPool)
# History reads (DATABASE_READ_URL, a replica a little behind); POOL itself when unset.
READ_POOL: web.AppKey[AsyncConnectionPool] = web.AppKey("read_pool", AsyncConnectionPool)
PREFIX: web.AppKey[str] = web.AppKey("prefix", str)
REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)
CURSORS: web.AppKey[CursorSigner] = web.AppKey("cursors", CursorSigner)
SETTINGS: web.AppKey[ApiSettings] = web.AppKey("settings", ApiSettings)
