"""`python -m api`: serve the HTTP API on HTTP_PORT."""

from __future__ import annotations

import sys

from aiohttp import web

from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.json_logging import configure_logging


def main() -> int:
    settings = ApiSettings()
    configure_logging("api", settings.log_level, settings.log_format)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = None
    import asyncio

    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
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
