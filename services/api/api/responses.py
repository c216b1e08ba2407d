"""JSON responses serialised with orjson, and the page size a request gets."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from api.settings import ApiSettings


def json_ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def page_size(requested: int | None, settings: ApiSettings) -> int:
    """The client's limit, else the server default; never above API_MAX_LIMIT."""
    return min(requested or settings.api_default_limit, settings.api_max_limit)
