"""Declared endpoints: one record per route drives validation, auth scope and the OpenAPI document.

A handler never parses its own inputs: the wrapper validates path, query and body with the
declared pydantic models and hands them over, so what is documented is exactly what is enforced.
Handlers answer with `json_ok` (orjson) and size pages with `page_size`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel

from api.access.auth import HASH_READS, HashRead, require_scope
from api.settings import ApiSettings
from stocktrack_common.http_errors import ApiError

M = TypeVar("M", bound=BaseModel)
Scope = Literal["read", "write"]


class Inputs(NamedTuple):
    """The validated inputs of one request (a tuple: one is built on every request)."""

    path: BaseModel | None = None
    query: BaseModel | None = None
    body: BaseModel | None = None

    @staticmethod
    def _as(value: BaseModel | None, cls: type[M]) -> M:
        if not isinstance(value, cls):
            raise TypeError(f"endpoint declared no {cls.__name__}")
        return value

    def path_as(self, cls: type[M]) -> M:
        return self._as(self.path, cls)

    def query_as(self, cls: type[M]) -> M:
        return self._as(self.query, cls)

    def body_as(self, cls: type[M]) -> M:
        return self._as(self.body, cls)


EndpointHandler = Callable[[web.Request, Inputs], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: EndpointHandler
    summary: str
    tag: str
    scope: Scope | None = "read"
    path_model: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    not_found: bool = True
    description: str = ""
    also_ok: tuple[int, ...] = field(default_factory=tuple)
    also_errors: tuple[int, ...] = field(default_factory=tuple)
    # A body that is not JSON (no `response` model): its media type, for the document.
    media_type: str | None = None
    # OpenAPI links of the success response, by name: how its values feed another operation.
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The Redis hash field the answer usually comes from: read with the rate-limit check in one
    # round trip, and taken by the handler with api.access.auth.read_hash_field.
    hash_read: HashRead | None = None


ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints", list)


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise ApiError(415, "request body must be application/json")
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "request body is not valid JSON", details=str(exc)) from exc
    return model.model_validate(data)


def _wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if endpoint.scope is not None:
            require_scope(request, endpoint.scope)
        inputs = Inputs(
            path=endpoint.path_model.model_validate(dict(request.match_info))
            if endpoint.path_model
            else None,
            query=endpoint.query.model_validate(dict(request.query)) if endpoint.query else None,
            body=await _read_body(request, endpoint.body) if endpoint.body else None,
        )
        return await endpoint.handler(request, inputs)

    handle.__name__ = endpoint.handler.__name__
    return handle


def add_endpoints(app: web.Application, *endpoints: Endpoint) -> None:
    """Register endpoints on the app and in its OpenAPI registry (the one call other modules make)."""
    registry = app.get(ENDPOINTS)
    if registry is None:
        registry = app[ENDPOINTS] = []
    for endpoint in endpoints:
        handler = _wrap(endpoint)
        app.router.add_route(endpoint.method, endpoint.path, handler)
        registry.append(endpoint)
        if endpoint.hash_read is not None:
            reads = app.get(HASH_READS)
            if reads is None:
                reads = app[HASH_READS] = {}
            reads[handler] = endpoint.hash_read


def json_ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def page_size(requested: int | None, settings: ApiSettings) -> int:
    """The client's limit, else the server default; never above API_MAX_LIMIT."""
    return min(requested or settings.api_default_limit, settings.api_max_limit)
