"""A scripted market-data server on loopback, serving the providers' documented response shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest_asyncio
from aiohttp import web
from prometheus_client import REGISTRY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return orjson.loads(fixture_text(name))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Reply:
    body: str | bytes | dict[str, Any] | list[Any] = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class FakeProvider:
    """Routes are 'PATH' or 'PATH?function=F' or 'PATH?function=F&symbol=S'; the most specific wins.

    Each route holds a queue of replies; the last reply repeats once the others are used.
    """

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self.app = web.Application()
        self.app.router.add_route("GET", "/{tail:.*}", self._handle)

    def script(self, route: str, *replies: Reply) -> None:
        self.routes[route] = list(replies)

    def _route_for(self, request: web.Request) -> str | None:
        query = request.query
        candidates = []
        if "function" in query:
            if "symbol" in query:
                candidates.append(f"{request.path}?function={query['function']}&symbol={query['symbol']}")
            candidates.append(f"{request.path}?function={query['function']}")
        if "symbol" in query:
            candidates.append(f"{request.path}?symbol={query['symbol']}")
        if "adjustment" in query:
            candidates.append(f"{request.path}?adjustment={query['adjustment']}")
        if "page_token" in query:
            candidates.append(f"{request.path}?page_token={query['page_token']}")
        candidates.append(request.path)
        return next((c for c in candidates if c in self.routes), None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Recorded(
                request.path, dict(request.query), dict(request.headers), asyncio.get_running_loop().time()
            )
        )
        route = self._route_for(request)
        if route is None:
            return web.json_response({"message": "not found"}, status=404)
        queue = self.routes[route]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body
        if isinstance(body, (dict, list)):
            body = orjson.dumps(body)
        return web.Response(
            body=body.encode() if isinstance(body, str) else body,
            status=reply.status,
            headers=reply.headers,
            content_type="application/json",
        )


@pytest_asyncio.fixture
async def fake_provider() -> AsyncIterator[FakeProvider]:
    provider = FakeProvider()
    runner = web.AppRunner(provider.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    provider.url = f"http://127.0.0.1:{port}"
    yield provider
    await runner.cleanup()
