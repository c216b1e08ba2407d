"""CORS for browser clients on other origins, off unless CORS_ORIGINS lists some.

Preflight requests are answered here (before routing decides they are an unknown method), and
every response to an allowed origin, errors included, carries the headers a browser needs to
read it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from stocktrack_common.http_errors import Handler

_ALLOW_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-ID, Last-Event-ID"
_EXPOSE_HEADERS = "Retry-After, X-Request-ID"


def cors_middleware(origins: Sequence[str]) -> Middleware:
    allowed = frozenset(origins)
    any_origin = "*" in allowed

    def allow_origin(origin: str | None) -> str | None:
        if not origin:
            return None
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allow_origin(request.headers.get("Origin"))
        if origin is None:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"
        return response

    return middleware
