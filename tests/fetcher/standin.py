"""A provider stand-in on loopback, served from its own thread for tests that drive subprocesses.

The fetcher under test runs as a real process; the test body waits with blocking calls, so the
stand-in cannot share the test's event loop. `FakeProvider` scripts the replies as usual.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from tests.fetcher.conftest import FakeProvider


@contextmanager
def threaded(provider: FakeProvider) -> Iterator[FakeProvider]:
    with serve(provider.app) as url:
        provider.url = url
        yield provider


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve `app` on a loopback port from a thread of its own; yields the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(app)
    urls: list[str] = []

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        urls.append(f"http://127.0.0.1:{port}")
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    ready.wait(10)
    try:
        yield urls[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
