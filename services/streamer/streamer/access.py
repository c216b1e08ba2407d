"""Who may stream: the same API keys and scopes as the api (stocktrack_common.api_keys).

A presented key must be valid (401 otherwise), whatever the settings; without a key, streaming
is open unless API_READ_REQUIRES_KEY is set. Browsers cannot set headers on EventSource or
WebSocket, so the key may also come as the `api_key` query parameter (the access log records
the path only, never the query).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter

from stocktrack_common.api_keys import KeyRefused, Principal, presented_key
from stocktrack_common.http_errors import ApiError
from streamer.state import KEYS, SETTINGS

AUTH_FAILURES = Counter(
    "stocktrack_streamer_auth_failures_total", "Connections refused for their key", ["reason"]
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="stocktrack"'}


async def check_access(request: web.Request) -> Principal | None:
    """Raise 401/403 before anything is streamed; returns the caller when a key was presented."""
    try:
        key = presented_key(request.headers, request.query)
        principal = None if key is None else await request.app[KEYS].verify(key)
    except KeyRefused as refused:
        AUTH_FAILURES.labels(refused.reason).inc()
        raise ApiError(401, refused.message, headers=_CHALLENGE) from None
    if principal is None:
        if request.app[SETTINGS].api_read_requires_key:
            AUTH_FAILURES.labels("missing").inc()
            raise ApiError(401, "an API key with the 'read' scope is required", headers=_CHALLENGE)
        return None
    if not principal.allows("read"):
        AUTH_FAILURES.labels("scope").inc()
        raise ApiError(403, "this API key lacks the 'read' scope")
    return principal
