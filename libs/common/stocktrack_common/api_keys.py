"""API keys: their format, their hash, and their rows in `api_keys`.

A key reads `stk_<id>_<secret>`. The id finds the row; the secret never touches the disk: the
row holds HMAC-SHA256(pepper, key), so a leaked table is useless without the server's pepper,
and a fast keyed hash is enough because the secret has 256 bits of entropy (nothing to guess).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.shared_calls import SharedCalls

KEY_PREFIX = "stk"
SCOPES = ("read", "write")
_KEY = re.compile(r"^stk_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    key_hash: str


def hash_key(key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (id, key); the key is shown once to its owner and stored only as a hash."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    match = _KEY.match(key)
    return match.group(1) if match else None


def key_matches(key: str, row: ApiKeyRow, pepper: str) -> bool:
    return hmac.compare_digest(hash_key(key, pepper), row.key_hash)


def _row(values: tuple[Any, ...]) -> ApiKeyRow:
    key_id, name, scopes, created_at, revoked_at, key_hash = values
    return ApiKeyRow(key_id, name, frozenset(scopes), created_at, revoked_at, key_hash)


_COLUMNS = "id, name, scopes, created_at, revoked_at, key_hash"


async def find_key(conn: AsyncConnection, key_id: str) -> ApiKeyRow | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
    row = await cur.fetchone()
    return _row(row) if row else None


async def create_key(
    conn: AsyncConnection, name: str, scopes: list[str], pepper: str
) -> tuple[ApiKeyRow, str]:
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    key_id, key = new_key()
    cur = await conn.execute(
        f"INSERT INTO api_keys (id, name, key_hash, scopes) VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}",
        (key_id, name, hash_key(key, pepper), sorted(set(scopes))),
    )
    row = await cur.fetchone()
    assert row is not None
    return _row(row), key


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount == 1


async def list_keys(conn: AsyncConnection) -> list[ApiKeyRow]:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")
    return [_row(r) for r in await cur.fetchall()]


# ----------------------------------------------------------------------------- checking presented keys


@dataclass(frozen=True)
class Principal:
    """Who a valid key belongs to and what it may do; `write` includes `read`."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or (scope == "read" and "write" in self.scopes)


class KeyRefused(Exception):
    """A presented key that must be answered with 401; `reason` labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def presented_key(headers: Mapping[str, str], query: Mapping[str, str] | None = None) -> str | None:
    """The key a request carries: `Authorization: Bearer <key>`, `X-API-Key: <key>`, or (where a
    browser cannot set headers: EventSource, WebSocket) an `api_key` query parameter.

    A present Authorization header must hold a key (an empty one is not "no key"), and a request
    naming two different keys is refused: serving it under either would ignore a credential
    the client sent.
    """
    bearer = None
    header = headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise KeyRefused("malformed", "Authorization must be 'Bearer <api key>'")
        bearer = value.strip()
    api_key = headers.get("X-API-Key")
    if bearer is not None and api_key is not None and api_key.strip() != bearer:
        raise KeyRefused("malformed", "Authorization and X-API-Key carry different keys")
    return bearer or api_key or (query.get("api_key") if query is not None else None) or None


class KeyVerifier:
    """Checks presented keys against `api_keys`, trusting a looked-up row for `cache_seconds`.

    Shared by the api and the streamer so both honour the same keys and scopes; a revocation
    therefore takes effect within API_KEY_CACHE_SECONDS on every replica of either. When a
    busy key's entry expires, its concurrent requests share one lookup instead of each taking
    a database connection at the same moment.
    """

    def __init__(self, pool: AsyncConnectionPool, pepper: str, cache_seconds: float) -> None:
        self.pool = pool
        self.pepper = pepper
        self.ttl = cache_seconds
        self.entries: dict[str, tuple[float, ApiKeyRow | None]] = {}
        self.lookups: SharedCalls[str, ApiKeyRow | None] = SharedCalls()

    async def verify(self, key: str) -> Principal:
        key_id = key_id_of(key)
        if key_id is None:
            raise KeyRefused("malformed", "malformed API key")
        row = await self._row(key_id)
        if row is None or not key_matches(key, row, self.pepper):
            raise KeyRefused("unknown", "invalid API key")
        if row.revoked_at is not None:
            raise KeyRefused("revoked", "API key revoked")
        return Principal(row.id, row.name, row.scopes)

    async def _row(self, key_id: str) -> ApiKeyRow | None:
        entry = self.entries.get(key_id)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        row, _ = await self.lookups.run(key_id, lambda: self._lookup(key_id))
        return row

    async def _lookup(self, key_id: str) -> ApiKeyRow | None:
        async with self.pool.connection() as conn:
            row = await find_key(conn, key_id)
        if self.ttl > 0:
            if len(self.entries) > 10_000:
                self.entries.clear()
            self.entries[key_id] = (time.monotonic() + self.ttl, row)
        return row
