"""`python -m streamer`: serve SSE and WebSocket on HTTP_PORT."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from stocktrack_common.json_logging import configure_logging
from streamer.app import create_app
from streamer.settings import StreamerSettings


def main() -> int:
    settings = StreamerSettings()
    configure_logging("streamer", settings.log_level, settings.log_format)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(
        create_app(settings),
        host="0.0.0.0",
        port=settings.http_port,
        access_log=None,
        print=None,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        loop=loop,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
