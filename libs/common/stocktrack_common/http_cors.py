"""CORS for browser clients on other origins (the dashboard reaching the streamer), off unless
CORS_ORIGINS lists some.

Preflight requests are answered by a middleware, before routing decides they are an unknown
method. The headers of real responses are added when the response is prepared, so streamed
responses (Server-Sent Events), whose headers go out before the handler returns, get them too,
and so do errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from aiohttp import web
from pydantic import BeforeValidator
from pydantic_settings import NoDecode

from stocktrack_common.http_errors import Handler
from stocktrack_common.settings import split_list

_ALLOW_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-ID, Last-Event-ID"
_EXPOSE_HEADERS = "Retry-After, X-Request-ID"


CorsOrigins = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
"""Settings type for CORS_ORIGINS: a comma-separated list in the environment."""


def add_cors(app: web.Application, origins: Sequence[str], position: int = 0) -> None:
    """Allow `origins` ('*' for any) to call `app` from a browser; no-op when empty.

    `position` places the preflight middleware among the app's middlewares.
    """
    allowed = frozenset(origins)
    if not allowed:
        return
    any_origin = "*" in allowed

    def allow_origin(origin: str | None) -> str | None:
        if not origin:
            return None
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = allow_origin(request.headers.get("Origin"))
        if (
            origin is not None
            and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = allow_origin(request.headers.get("Origin"))
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"

    app.middlewares.insert(position, preflight)
    app.on_response_prepare.append(add_headers)
