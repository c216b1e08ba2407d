"""The streamer's app factory: Redis and the hub's reader task live in one cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from stocktrack_common.api_keys import KeyVerifier
from stocktrack_common.emf import EmfDistributions
from stocktrack_common.health import Heartbeat, ReadinessCheck, add_health_routes, postgres_check, redis_check
from stocktrack_common.http_cors import add_cors
from stocktrack_common.http_middleware import service_middleware
from stocktrack_common.http_observability import add_emf_flush
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import redis_from_url
from stocktrack_common.stream_names import signals_stream, tick_streams
from streamer.hub import Hub
from streamer.settings import StreamerSettings
from streamer.sse import stream
from streamer.state import HUB, KEYS, REDIS, SETTINGS
from streamer.ws import websocket


def create_app(settings: StreamerSettings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """`clock` (wall time in seconds) drives the bar close timer; tests shift it to reach a minute's end."""
    emf = EmfDistributions.from_settings(settings.emf, service="streamer")
    app = web.Application(
        middlewares=[service_middleware("streamer", emf)],
        client_max_size=16 * 1024,
    )
    add_cors(app, settings.cors_origins, position=1)
    add_emf_flush(app, emf)
    app[SETTINGS] = settings
    # The reader loop beats this; a reader stuck for this long fails /healthz.
    heartbeat = Heartbeat(max_age=max(30.0, settings.streamer_block_ms / 1000 * 10))

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # No wait for Redis here: the server listens at once, /readyz says 503 until the reader has started.
        app[REDIS] = redis_from_url(settings.redis_url.get_secret_value(), cluster=settings.redis_cluster)
        # API keys live in PostgreSQL; the pool connects in the background, so an outage only
        # affects clients that present a key (and everyone when keys are required).
        pool = await open_pg_pool(settings.database_url.get_secret_value(), settings.db, name="streamer")
        app[KEYS] = KeyVerifier(
            pool, settings.api_key_pepper.get_secret_value(), settings.api_key_cache_seconds
        )
        app[HUB] = Hub(
            app[REDIS],
            tick_streams(settings.stream_prefix, settings.tick_shards),
            signals_stream(settings.stream_prefix),
            ring_size=settings.streamer_ring_size,
            read_count=settings.streamer_read_count,
            block_ms=settings.streamer_block_ms,
            max_replay=settings.streamer_max_replay,
            heartbeat=heartbeat,
            grace_ms=settings.bar_close_grace_ms,
            clock=clock,
        )
        stop = asyncio.Event()
        reader = asyncio.create_task(app[HUB].run(stop), name="streamer-reader")
        yield
        stop.set()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await pool.close()
        await app[REDIS].aclose()

    async def close_clients(app: web.Application) -> None:
        app[HUB].close_all()

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(close_clients)

    async def check_redis() -> None:
        await redis_check(app[REDIS])()

    async def check_reader() -> None:
        if not app[HUB].started.is_set():
            raise RuntimeError("stream reader not started")

    checks: dict[str, ReadinessCheck] = {"redis": check_redis, "reader": check_reader}
    if settings.api_read_requires_key:

        async def check_postgres() -> None:
            await postgres_check(app[KEYS].pool)()

        checks["postgres"] = check_postgres
    add_health_routes(app, heartbeat, checks)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/ws", websocket)
    return app
