"""A path-routing reverse proxy on loopback, like the Helm chart's ingress.

In a deployment one host serves both services: /v1/stream and /v1/ws go to the streamer,
everything else to the api, so the page reaches the streamer on its own origin. The browser
test runs the stack the same way (DASHBOARD_STREAM_URL empty = same origin).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web

STREAMER_PATHS = ("/v1/stream", "/v1/ws")
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
# Connection-level headers describe one hop and must not be forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def _forwardable(headers: object) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}  # type: ignore[attr-defined]


def too_many_requests() -> web.Response:
    body = {"error": {"code": "rate_limited", "message": "too many requests", "status": 429}}
    return web.json_response(body, status=429, headers={"Retry-After": "1"})


def proxy_app(api_port: int, streamer_port: int, refuse: dict[str, int] | None = None) -> web.Application:
    app = web.Application()
    left_to_refuse = dict(refuse or {})

    async def forward(request: web.Request) -> web.StreamResponse:
        if left_to_refuse.get(request.path, 0) > 0:
            left_to_refuse[request.path] -= 1
            return too_many_requests()
        port = streamer_port if request.path.startswith(STREAMER_PATHS) else api_port
        session = request.app[SESSION]
        body = await request.read()
        async with session.request(
            request.method,
            f"http://127.0.0.1:{port}{request.path_qs}",
            headers=_forwardable(request.headers),
            data=body or None,
            allow_redirects=False,
            auto_decompress=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, headers=_forwardable(upstream.headers))
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@contextmanager
def running_ingress(api_port: int, streamer_port: int, refuse: dict[str, int] | None = None) -> Iterator[int]:
    """Serve the proxy from a thread of its own; yields its port."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(proxy_app(api_port, streamer_port, refuse), shutdown_timeout=1.0)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
