"""The JSON error shape (docs/architecture.md) for every HTTP service, as http_middleware enforces it.

{"error": {"code": "...", "message": "...", "details": ...}} with the right status, for errors
the handlers raise, for aiohttp's own (404 route, 405 method, 413 body), and for crashes
(a 500 that never leaks a traceback).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a handler to answer with the documented error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status
        self.headers = headers or {}
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details


def error_body(status: int, message: str, code: str | None = None, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code or _CODES.get(status, "error"), "message": message, "details": details}}


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(error_body(status, message, code, details), status=status, headers=headers)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def error_for(request: web.Request, exc: Exception) -> web.Response | None:
    """The documented error response for what a handler raised; None for what passes through
    (an HTTPException below 400, such as a redirect, which aiohttp answers itself)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.message, exc.code, exc.details, headers=dict(exc.headers))
    if isinstance(exc, ValidationError):
        return error_response(422, "request validation failed", details=validation_details(exc))
    if isinstance(exc, web.HTTPException):
        if exc.status_code < 400:
            return None
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(exc.status_code, exc.reason or "error", headers=headers)
    log.exception("unhandled error", path=request.path, method=request.method)
    return error_response(500, "internal server error")
