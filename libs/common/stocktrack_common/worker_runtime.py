"""What every worker process does around its work loop, written once.

Open Redis and the database pool (with retry), start the probe/metrics server, turn SIGTERM
into an event, run the service's loop, and close everything in reverse order when the loop
has drained. Resources open and close here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.emf import EmfDistributions, EmfSettings
from stocktrack_common.health import Heartbeat, ReadinessCheck, postgres_check, redis_check
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.lifecycle import install_signal_handlers
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import create_redis
from stocktrack_common.settings import CommonSettings
from stocktrack_common.worker_http import start_worker_http

log = structlog.get_logger(__name__)


@dataclass
class WorkerContext:
    """Resources handed to a worker's loop; the runtime owns their lifetime."""

    redis: aioredis.Redis
    pool: AsyncConnectionPool | None
    heartbeat: Heartbeat
    stop: asyncio.Event
    emf: EmfDistributions | None = None
    # /readyz runs every check in here; a loop may add its own (the fetcher's publisher does).
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)

    @property
    def db(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("this worker was started without a database pool")
        return self.pool


WorkerMain = Callable[[WorkerContext], Awaitable[None]]


async def run_worker(
    settings: CommonSettings,
    service: str,
    main: WorkerMain,
    *,
    needs_db: bool = True,
    checks: Mapping[str, ReadinessCheck] | None = None,
) -> int:
    """Run `main` until SIGTERM/SIGINT (or until it returns); returns the process exit code.

    `checks` adds service-specific readiness checks to the Redis/PostgreSQL pings.
    """
    configure_logging(service, settings.log_level, settings.log_format)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    heartbeat = Heartbeat()
    redis = await create_redis(settings.redis_url.get_secret_value())
    pool: AsyncConnectionPool | None = None
    runner = None
    # CloudWatch's agent drops Prometheus histograms; EMF lines carry the latency distributions instead.
    emf = EmfDistributions.from_settings(EmfSettings(), service=service)
    emf_task = asyncio.create_task(emf.run(stop)) if emf is not None else None
    try:
        if needs_db:
            pool = await open_pg_pool(
                settings.database_url.get_secret_value(),
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                name=service,
            )
        readiness: dict[str, ReadinessCheck] = {"redis": redis_check(redis)}
        if pool is not None:
            readiness["postgres"] = postgres_check(pool)
        readiness.update(checks or {})
        runner = await start_worker_http(settings.metrics_host, settings.metrics_port, heartbeat, readiness)
        log.info("worker started", metrics_port=settings.metrics_port)
        await main(
            WorkerContext(
                redis=redis, pool=pool, heartbeat=heartbeat, stop=stop, emf=emf, readiness=readiness
            )
        )
        return 0
    except Exception:
        log.exception("worker failed")
        return 1
    finally:
        stop.set()
        if emf_task is not None:
            await emf_task
        if runner is not None:
            await runner.cleanup()
        if pool is not None:
            await pool.close()
        await redis.aclose()
        log.info("worker stopped")
