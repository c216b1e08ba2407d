"""Running a service process, written once: signals, the event loop, a worker's resources and drain.

A worker (`run_worker`) serves its probes first, then waits for Redis and PostgreSQL for as long
as they take (logging, /readyz 503), then runs its loop. SIGTERM sets the stop event; the loop
finishes the batch in hand and returns, and if it has not within SHUTDOWN_TIMEOUT_SECONDS it is
cancelled (what it held stays pending in its group and is re-read on the next start). Resources
open and close here and nowhere else. HTTP services (`serve`) get the same bound from aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.consumer import Delivery, StreamConsumer
from stocktrack_common.emf import EmfDistributions
from stocktrack_common.health import (
    Heartbeat,
    ReadinessCheck,
    postgres_check,
    redis_check,
    run_checks,
    start_probe_server,
)
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.lifecycle import install_signal_handlers, sleep_or_stop
from stocktrack_common.messages import Signal, decode_signal
from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.redis_client import redis_from_url
from stocktrack_common.settings import CommonSettings, ConsumerSettings, SignalConsumerSettings
from stocktrack_common.stream_names import consumer_presence_key, dead_stream, signals_stream

M = TypeVar("M")
log = structlog.get_logger(__name__)

# Pause between dependency checks while a worker waits for Redis/PostgreSQL at start.
DEPENDENCY_RETRY_MAX_SECONDS = 0.5


def serve(app_factory: Callable[[], web.Application], settings: CommonSettings, service: str) -> int:
    """Run an HTTP app on HTTP_PORT until SIGTERM/SIGINT; aiohttp drains open requests within the timeout.

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


@dataclass
class WorkerContext:
    """Resources handed to a worker's loop; the runtime owns their lifetime."""

    redis: aioredis.Redis
    pool: AsyncConnectionPool | None
    heartbeat: Heartbeat
    stop: asyncio.Event
    consumer_name: str
    stream_prefix: str
    emf: EmfDistributions | None = None
    # /readyz runs every check in here; a loop may add its own (the fetcher's publisher does).
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)

    @property
    def db(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("this worker was started without a database pool")
        return self.pool

    def stream_consumer(
        self,
        settings: ConsumerSettings,
        *,
        streams: list[str],
        group: str,
        handler: Callable[[list[Delivery[M]]], Awaitable[None]],
        decode: Callable[[dict[bytes, bytes]], M],
        decode_flat: Callable[[list[bytes]], M | None] | None = None,
        decode_read: Callable[[list[list[bytes]]], list[M] | None] | None = None,
        batch_size: int | None = None,
    ) -> StreamConsumer[M]:
        """The one way a worker builds a consumer: its settings, this process's name, heartbeat and EMF.

        `batch_size` replaces the settings' own for a consumer of another stream kind (as
        `signal_consumer` does with `signal_batch_size`). `decode_flat`, `decode_read`: see StreamConsumer.
        """
        return StreamConsumer(
            self.redis,
            streams=streams,
            group=group,
            consumer=self.consumer_name,
            handler=handler,
            decode=decode,
            decode_flat=decode_flat,
            decode_read=decode_read,
            dead_stream=dead_stream(self.stream_prefix),
            presence_key=consumer_presence_key(self.stream_prefix, group, self.consumer_name),
            batch_size=settings.batch_size if batch_size is None else batch_size,
            block_ms=settings.block_ms,
            max_deliveries=settings.max_deliveries,
            claim_idle_ms=settings.claim_idle_ms,
            retry_backoff_base=settings.retry_backoff_base_seconds,
            retry_backoff_cap=settings.retry_backoff_cap_seconds,
            stuck_after=settings.stuck_after_seconds,
            heartbeat=self.heartbeat,
            emf=self.emf,
        )

    def signal_consumer(
        self,
        settings: SignalConsumerSettings,
        *,
        group: str,
        handler: Callable[[list[Delivery[Signal]]], Awaitable[None]],
    ) -> StreamConsumer[Signal]:
        """The signals stream, read the same way by every group that reads it (writer, alerts).

        Its batches use `signal_batch_size`: signals are few next to ticks, so a group reading
        them must not wait to fill a tick-sized batch.
        """
        return self.stream_consumer(
            settings,
            streams=[signals_stream(self.stream_prefix)],
            group=group,
            handler=handler,
            decode=decode_signal,
            batch_size=settings.signal_batch_size,
        )


WorkerMain = Callable[[WorkerContext], Awaitable[None]]


async def wait_until_reachable(
    checks: dict[str, ReadinessCheck], stop: asyncio.Event, heartbeat: Heartbeat
) -> bool:
    """Wait until every check passes (True) or stop is requested (False), logging what is missing.

    Pods start in any order and a database may come up minutes after its clients: waiting is
    the normal case, not a failure, so the heartbeat keeps beating and /healthz stays green.
    """
    delay = 0.1
    while not stop.is_set():
        heartbeat.beat()
        results = await run_checks(checks)
        missing = {name: result for name, result in results.items() if result != "ok"}
        if not missing:
            return True
        log.warning("waiting for dependencies", missing=missing, retry_in_s=delay)
        await sleep_or_stop(stop, delay)
        delay = min(delay * 2, DEPENDENCY_RETRY_MAX_SECONDS)
    return False


async def run_until_drained(work: Awaitable[None], stop: asyncio.Event, drain_timeout: float) -> bool:
    """Run `work` until it returns; once `stop` is set, give it `drain_timeout` seconds, then cancel.

    Returns False when the drain had to be cut short (like saq's shutdown_grace_period_s: a
    stuck handler must not keep the pod past Kubernetes' grace period and be SIGKILLed with
    nothing logged).
    """
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            done, _ = await asyncio.wait({task}, timeout=drain_timeout)
            if not done:
                log.warning("drain exceeded its bound; cancelling the loop", shutdown_timeout_s=drain_timeout)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return False
        task.result()
        return True
    finally:
        stopping.cancel()


async def run_worker(
    settings: CommonSettings,
    service: str,
    main: WorkerMain,
    *,
    needs_db: bool = True,
    checks: Mapping[str, ReadinessCheck] | None = None,
    pool_reuse_unchecked_seconds: float = 0.0,
) -> int:
    """Run `main` until SIGTERM/SIGINT (or until it returns); returns the process exit code.

    `checks` adds service-specific readiness checks to the Redis/PostgreSQL pings; only the
    pings gate the start (a service check may depend on the loop running).
    `pool_reuse_unchecked_seconds`: see `stocktrack_common.pg_pool` (0 checks every connection).
    """
    configure_logging(service, settings.log_level, settings.log_format)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    heartbeat = Heartbeat()
    redis = redis_from_url(settings.redis_url.get_secret_value(), cluster=settings.redis_cluster)
    pool: AsyncConnectionPool | None = None
    runner = None
    # CloudWatch's agent drops Prometheus histograms; EMF lines carry the latency distributions instead.
    emf = EmfDistributions.from_settings(settings.emf, service=service)
    emf_task = asyncio.create_task(emf.run(stop)) if emf is not None else None
    try:
        dependencies: dict[str, ReadinessCheck] = {"redis": redis_check(redis)}
        if needs_db:
            pool = await open_pg_pool(
                settings.database_url.get_secret_value(),
                settings.db,
                name=service,
                reuse_unchecked_seconds=pool_reuse_unchecked_seconds,
            )
            dependencies["postgres"] = postgres_check(pool)
        readiness = {**dependencies, **(checks or {})}
        runner = await start_probe_server(settings.metrics_host, settings.metrics_port, heartbeat, readiness)
        log.info("worker started", metrics_port=settings.metrics_port)
        if not await wait_until_reachable(dependencies, stop, heartbeat):
            return 0
        log.info("dependencies reachable; worker running")
        ctx = WorkerContext(
            redis=redis,
            pool=pool,
            heartbeat=heartbeat,
            stop=stop,
            consumer_name=settings.consumer_name,
            stream_prefix=settings.stream_prefix,
            emf=emf,
            readiness=readiness,
        )
        await run_until_drained(main(ctx), stop, settings.shutdown_timeout_seconds)
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
