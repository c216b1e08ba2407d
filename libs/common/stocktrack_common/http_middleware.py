"""The outermost middleware of every HTTP service: request id, metrics and access log, error shape.

Every request gets an id (the client's X-Request-ID when it is sane, else a new one), bound to
every log line while it is served and echoed in the response. Whatever the handler raises is
answered in the documented error shape (http_errors) before the request is recorded, so the
metrics and the access log see the status the client gets (http_observability).

One middleware rather than three: each aiohttp middleware layer is a partial and a coroutine on
every request, and these three only wrap the handler.
"""

from __future__ import annotations

import os
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from stocktrack_common.emf import EmfDistributions
from stocktrack_common.http_errors import Handler, error_for
from stocktrack_common.http_observability import request_recorder

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)

# A random (version 4, RFC 4122 variant) UUID's bits, as uuid.uuid4() sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """What `uuid.uuid4().hex` returns (32 hex digits), in half its time: no UUID object."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def request_id(incoming: str) -> str:
    """The client's X-Request-ID when it is printable and at most 128 characters, else a new id."""
    return incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else new_request_id()


def service_middleware(service: str, emf: EmfDistributions | None = None) -> Middleware:
    """Build the middleware for one service; `service` labels its metrics and log lines."""
    record = request_recorder(service, emf)
    bind = structlog.contextvars.bind_contextvars
    unbind = structlog.contextvars.unbind_contextvars

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id(request.headers.get("X-Request-ID", ""))
        request[REQUEST_ID] = rid
        bind(request_id=rid)
        start = time.perf_counter()
        status = 500
        try:
            try:
                response = await handler(request)
            except Exception as exc:
                answer = error_for(request, exc)
                if answer is None:
                    raise
                response = answer
            status = response.status
            if not response.prepared:
                response.headers["X-Request-ID"] = rid
            return response
        except web.HTTPException as exc:
            status = exc.status_code
            raise
        finally:
            record(request, status, time.perf_counter() - start)
            unbind("request_id")

    return middleware
