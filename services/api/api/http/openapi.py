"""/openapi.json, generated from the declared endpoints and their pydantic models, and the /docs page.

Nothing here is written by hand per endpoint: parameters come from the path and query models
that validate requests, bodies and responses from their models (JSON Schema 2020-12, which
OpenAPI 3.1 uses as is), and the error responses from the shared error shape. The /docs page
works offline: Swagger UI is vendored in the package's static/ directory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.http.cursors import UNSCOPED
from api.http.endpoints import ENDPOINTS, Endpoint
from api.settings import SETTINGS

STATIC_DIR = resources.files("api") / "static"
REF = "#/components/schemas/{model}"
_DOCUMENT: web.AppKey[dict[str, bytes]] = web.AppKey("openapi_document", dict)
_ERROR_TEXT = {
    400: "Malformed request (bad JSON body, tampered cursor)",
    401: "API key missing where required, malformed, unknown or revoked",
    403: "API key lacks the required scope",
    404: "Unknown symbol or nothing found",
    409: "Conflicts with the deployment's configuration",
    413: "Request body too large",
    415: "Request body is not application/json",
    422: "Parameters or body failed validation",
    429: "Rate limit exceeded; see Retry-After",
    500: "Internal error",
}
_SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <api key>"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


class ErrorDetail(BaseModel):
    code: str = Field(description="machine readable, e.g. validation_error, not_found, rate_limited")
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The shape of every error response, as stocktrack_common.http_errors writes it."""

    error: ErrorDetail


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value; JSON null has no spelling in a query string."""
    schema = {k: v for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    variants = schema.get("anyOf")
    if variants:
        kept = [v for v in variants if v != {"type": "null"}]
        schema.pop("anyOf")
        if len(kept) == 1:
            schema = {**kept[0], **schema}
        else:
            schema["anyOf"] = kept
    return schema


def parameters(model: type[BaseModel], location: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    result = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        description = prop.pop("description", None)
        param: dict[str, Any] = {
            "name": name,
            "in": location,
            "required": location == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        result.append(param)
    return result


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace("/", "_").replace("-", "_")
    return f"{endpoint.method.lower()}_{words}"


def _next_page_link(endpoint: Endpoint, operation_id: str) -> dict[str, Any] | None:
    """An OpenAPI link from a page to the next one, for endpoints that page with a cursor.

    A cursor is valid only with the query it came from (see cursors.py): the link passes the
    `next_cursor` back with the same path and filters, which is how a client (and a stateful
    fuzzer) obtains a cursor that is accepted.
    """
    if endpoint.query is None or endpoint.response is None:
        return None
    if "cursor" not in endpoint.query.model_fields or "next_cursor" not in endpoint.response.model_fields:
        return None
    parameters = {
        f"path.{name}": f"$request.path.{name}"
        for name in (endpoint.path_model.model_fields if endpoint.path_model else {})
    }
    for name, info in endpoint.query.model_fields.items():
        alias = info.alias or name
        if alias not in UNSCOPED:
            parameters[f"query.{alias}"] = f"$request.query.{alias}"
    parameters["query.cursor"] = "$response.body#/next_cursor"
    return {
        "operationId": operation_id,
        "description": "the next page of the same query: next_cursor with the same path and filters",
        "parameters": parameters,
    }


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return response


def build_openapi(
    endpoints: Sequence[Endpoint], *, title: str, version: str, read_requires_key: bool
) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for ep in endpoints:
        if ep.response:
            wanted.append((ep.response, "serialization"))
        if ep.body:
            wanted.append((ep.body, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"operationId": _operation_id(ep), "summary": ep.summary, "tags": [ep.tag]}
        if ep.description:
            op["description"] = ep.description
        params = []
        if ep.path_model:
            params += parameters(ep.path_model, "path")
        if ep.query:
            params += parameters(ep.query, "query")
        if params:
            op["parameters"] = params
        if ep.body:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        for status in (ep.status, *ep.also_ok):
            if ep.response is not None:
                responses[str(status)] = {
                    "description": "OK",
                    "content": {"application/json": {"schema": refs[(ep.response, "serialization")]}},
                }
            elif ep.media_type is not None:
                responses[str(status)] = {"description": "OK", "content": {ep.media_type: {}}}
            else:
                responses[str(status)] = {"description": "Done"}
            links = dict(ep.links)
            if link := _next_page_link(ep, op["operationId"]):
                links["next_page"] = link
            if links:
                responses[str(status)]["links"] = links
        errors = [400, 401, 403, 422, 429, 500, *ep.also_errors]
        if ep.not_found or ep.path_model:
            errors.append(404)
        if ep.body:
            errors += [413, 415]
        for status in sorted(errors):
            responses[str(status)] = _error(status)
        op["responses"] = responses
        keyed: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
        if ep.scope == "write" or (ep.scope == "read" and read_requires_key):
            op["security"] = keyed
        elif ep.scope == "read":
            op["security"] = [{}, *keyed]
        else:
            op["security"] = []
        paths.setdefault(ep.path, {})[ep.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Prices, history, indicators and signals. Times are epoch milliseconds UTC; "
            'prices are decimal strings. Errors: {"error": {"code", "message", "details"}}.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}), "securitySchemes": _SECURITY_SCHEMES},
    }


def openapi_document(app: web.Application) -> dict[str, Any]:
    endpoints: list[Endpoint] = app[ENDPOINTS]
    return build_openapi(
        endpoints, title="stocktrack API", version="1", read_requires_key=app[SETTINGS].api_read_requires_key
    )


async def openapi_json(request: web.Request) -> web.Response:
    # Built on first use, when every module has registered its endpoints, then served from memory.
    cache = request.app[_DOCUMENT]
    if "body" not in cache:
        cache["body"] = orjson.dumps(openapi_document(request.app))
    return web.Response(body=cache["body"], content_type="application/json")


async def docs_page(_: web.Request) -> web.Response:
    html = (STATIC_DIR / "docs.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html")


def add_docs_routes(app: web.Application) -> None:
    app[_DOCUMENT] = {}
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_static("/docs/static", str(STATIC_DIR), append_version=False)
