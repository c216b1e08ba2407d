"""The api's app factory: pools open and close in one cleanup context; middleware and routes wired here.

Each feature package (market, alerts, dashboard) declares its routes as ENDPOINTS, registered
here one module per line with `add_endpoints(app, *module.ENDPOINTS)`; an endpoint registered
that way is validated, scope-checked and documented in /openapi.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from api.access.auth import CLIENT_ADDRESSES, KEYS, LIMITER, ClientAddresses, auth_middleware
from api.access.request_limits import RateLimiter
from api.alerts import routes as alerts
from api.dashboard.routes import add_dashboard_routes
from api.http.cursors import CursorSigner, cursor_key
from api.http.endpoints import add_endpoints
from api.http.openapi import add_docs_routes
from api.market import bars, quotes, scorecard, signals, symbols
from api.settings import CURSORS, POOL, PREFIX, READ_POOL, REDIS, SETTINGS, ApiSettings
from stocktrack_common.api_keys import KeyVerifier
from stocktrack_common.emf import EmfDistributions
from stocktrack_common.health import ReadinessCheck, add_health_routes, postgres_check, redis_check
from stocktrack_common.http_cors import add_cors
from stocktrack_common.http_middleware import service_middleware
from stocktrack_common.http_observability import add_emf_flush
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import redis_from_url
from stocktrack_common.shared_calls import SharedCalls

log = structlog.get_logger(__name__)


def create_app(settings: ApiSettings) -> web.Application:
    emf = EmfDistributions.from_settings(settings.emf, service="api")
    app = web.Application(
        middlewares=[
            service_middleware("api", emf),
            auth_middleware,
        ],
        client_max_size=settings.api_max_body_bytes,
    )
    add_cors(app, settings.cors_origins, position=1)
    add_emf_flush(app, emf)
    app[SETTINGS] = settings
    app[PREFIX] = settings.stream_prefix
    app[CLIENT_ADDRESSES] = ClientAddresses(settings.trusted_proxies)
    key, key_source = cursor_key(settings.cursor_secret, settings.api_key_pepper)
    app[CURSORS] = CursorSigner(key)
    app[bars.BAR_READS] = SharedCalls()
    if key_source == "random":
        log.warning("CURSOR_SECRET and API_KEY_PEPPER are empty: cursors are signed with a per-process key")

    async def resources(app: web.Application) -> AsyncIterator[None]:
        if not settings.api_key_pepper.get_secret_value():
            log.warning("API_KEY_PEPPER is empty: API key hashes are not keyed with a server secret")
        # Neither client waits for its server: the api listens at once and /readyz says 503
        # until both answer (pods start in any order).
        app[REDIS] = redis_from_url(settings.redis_url.get_secret_value(), cluster=settings.redis_cluster)
        app[LIMITER] = RateLimiter(app[REDIS], settings.stream_prefix)
        app[POOL] = await open_pg_pool(settings.database_url.get_secret_value(), settings.db, name="api")
        read_url = settings.database_read_url
        app[READ_POOL] = (
            await open_pg_pool(read_url.get_secret_value(), settings.db, name="api-read")
            if read_url
            else app[POOL]
        )
        app[KEYS] = KeyVerifier(
            app[POOL], settings.api_key_pepper.get_secret_value(), settings.api_key_cache_seconds
        )
        yield
        if app[READ_POOL] is not app[POOL]:
            await app[READ_POOL].close()
        await app[POOL].close()
        await app[REDIS].aclose()

    app.cleanup_ctx.append(resources)

    async def check_redis() -> None:
        await redis_check(app[REDIS])()

    async def check_postgres() -> None:
        await postgres_check(app[POOL])()

    async def check_read_replica() -> None:
        await postgres_check(app[READ_POOL])()

    readiness: dict[str, ReadinessCheck] = {"redis": check_redis, "postgres": check_postgres}
    if settings.database_read_url is not None:
        readiness["postgres_read"] = check_read_replica
    add_health_routes(app, None, readiness)
    add_docs_routes(app)
    add_endpoints(app, *symbols.ENDPOINTS)
    add_endpoints(app, *quotes.ENDPOINTS)
    add_endpoints(app, *bars.ENDPOINTS)
    add_endpoints(app, *signals.ENDPOINTS)
    add_endpoints(app, *scorecard.ENDPOINTS)
    add_endpoints(app, *alerts.ENDPOINTS)
    add_dashboard_routes(app, settings.dashboard_stream_url)
    return app
