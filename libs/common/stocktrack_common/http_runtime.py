"""Serving an HTTP service (api, streamer): JSON logs, uvloop, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from stocktrack_common.json_logging import configure_logging
from stocktrack_common.settings import CommonSettings


def serve(app_factory: Callable[[], web.Application], settings: CommonSettings, service: str) -> int:
    """Run the app on HTTP_PORT until SIGTERM/SIGINT; aiohttp drains open requests within the timeout.

    The app is built after logging is configured, so anything its factory logs is JSON too.
    """
    configure_logging(service, settings.log_level, settings.log_format)
    app = app_factory()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        loop = asyncio.new_event_loop()
    web.run_app(
        app,
        host="0.0.0.0",
        port=settings.http_port,
        access_log=None,
        print=None,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        loop=loop,
    )
    return 0
