"""/openapi.json and the /docs page, which works offline: Swagger UI is vendored in static/."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from api.openapi import build_openapi
from api.routing import ENDPOINTS, Endpoint
from api.state import SETTINGS

STATIC_DIR = resources.files("api") / "static"
_DOCUMENT: web.AppKey[dict[str, bytes]] = web.AppKey("openapi_document", dict)


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
