"""The api's app factory: pools open and close in one cleanup context; routes and middleware wired here."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api import handlers
from api.handlers import POOL, PREFIX, REDIS
from api.settings import ApiSettings
from stocktrack_common.health import postgres_check, redis_check
from stocktrack_common.http_errors import error_middleware, request_id_middleware
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import create_redis
from stocktrack_common.worker_http import add_health_routes


def create_app(settings: ApiSettings) -> web.Application:
    app = web.Application(middlewares=[request_id_middleware, error_middleware], client_max_size=64 * 1024)
    app[PREFIX] = settings.stream_prefix

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[REDIS] = await create_redis(settings.redis_url.get_secret_value())
        app[POOL] = await open_pg_pool(settings.database_url.get_secret_value(), min_size=settings.db_pool_min,
                                       max_size=settings.db_pool_max, name="api")
        yield
        await app[POOL].close()
        await app[REDIS].aclose()

    app.cleanup_ctx.append(resources)

    async def check_redis() -> None:
        await redis_check(app[REDIS])()

    async def check_postgres() -> None:
        await postgres_check(app[POOL])()

    add_health_routes(app, None, {"redis": check_redis, "postgres": check_postgres})
    app.router.add_get("/v1/quotes/{symbol}/latest", handlers.latest_quote)
    app.router.add_get("/v1/ticks/{symbol}", handlers.ticks)
    return app
