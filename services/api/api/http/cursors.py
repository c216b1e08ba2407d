"""Pagination cursors: opaque to clients, signed by the server and bound to the query they page.

A cursor names a position in one result set. Unsigned, a client could edit it (jump to any
key, inject odd values) or replay it against another symbol or filter, and be served a page
of a query it never asked for. So each cursor carries an HMAC-SHA256 (truncated to 128 bits)
over the query's identity - the route, the symbol and every filter except the cursor and the
page size - and its own payload; anything else is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any

import orjson
from pydantic import BaseModel, SecretStr

from stocktrack_common.http_errors import ApiError

MAC_BYTES = 16
MAC_CHARS = 22  # base64url of 16 bytes, unpadded
# A MAC and at least one payload character; the payload is base64url JSON.
CURSOR_PATTERN = rf"^[A-Za-z0-9_\-]{{{MAC_CHARS + 2},512}}$"
UNSCOPED = frozenset({"cursor", "limit"})  # a client may change the page size between pages


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def cursor_key(cursor_secret: SecretStr, api_key_pepper: SecretStr) -> tuple[bytes, str]:
    """(signing key, where it came from): CURSOR_SECRET, else API_KEY_PEPPER, else random.

    The pepper is not used as is: a key derived from it for this one purpose keeps cursor MACs
    and API key hashes from ever being comparable.
    """
    if secret := cursor_secret.get_secret_value():
        return secret.encode(), "CURSOR_SECRET"
    if pepper := api_key_pepper.get_secret_value():
        return hmac.new(pepper.encode(), b"stocktrack pagination cursors", hashlib.sha256).digest(), (
            "API_KEY_PEPPER"
        )
    return os.urandom(32), "random"


def query_scope(
    route: str, symbol: str | None, query: BaseModel, replaced: frozenset[str] = frozenset()
) -> bytes:
    """The identity of a query: what a cursor from it may be used with. `replaced` names the
    parameters the cursor stands in for (the bar endpoints' cursor replaces `to`)."""
    filters = query.model_dump(mode="json", exclude=set(UNSCOPED | replaced))
    return orjson.dumps([route, symbol, filters], option=orjson.OPT_SORT_KEYS)


class CursorSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, scope: bytes, payload: bytes) -> bytes:
        return hmac.new(self._key, scope + b"\0" + payload, hashlib.sha256).digest()[:MAC_BYTES]

    def encode(self, values: dict[str, Any], scope: bytes) -> str:
        payload = orjson.dumps(values)
        return _b64(self._mac(scope, payload)) + _b64(payload)

    def decode(self, cursor: str, keys: set[str], scope: bytes) -> dict[str, Any]:
        """The cursor's values if this server issued it for this very query; otherwise 400."""
        value: Any = None
        try:
            mac, payload = _unb64(cursor[:MAC_CHARS]), _unb64(cursor[MAC_CHARS:])
            if hmac.compare_digest(mac, self._mac(scope, payload)):
                value = orjson.loads(payload)
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            value = None
        if not isinstance(value, dict) or not keys <= value.keys():
            raise ApiError(
                400,
                "invalid cursor: pass back a next_cursor unchanged, with the query it came from",
                details=[{"loc": ["query", "cursor"], "msg": "not a cursor of this query"}],
            )
        return value
