"""Liveness, readiness and metrics endpoints, shared by workers and HTTP services.

Liveness comes from inside the work loop: the loop beats a Heartbeat each iteration, so a
wedged loop (not just a live process) fails /healthz, and so does a loop that has been retrying
a "transient" error for too long. Readiness pings the dependencies. Workers serve these on a
small probe server of their own; HTTP services add the same routes to their app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_SECONDS = 1.5


class Heartbeat:
    """Timestamp of the last loop iteration, plus what has been failing and since when.

    Stale beyond `max_age` means not alive; so does any component that has reported a failure
    for longer than the bound it gave (`failing`) without reporting recovery (`recovered`).
    """

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self.last = time.monotonic()
        self._failing: dict[str, tuple[float, float]] = {}

    def beat(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last

    def failing(self, what: str, bound: float) -> None:
        """`what` is retrying a failure; after `bound` seconds of it the process is not alive."""
        if what not in self._failing:
            self._failing[what] = (time.monotonic(), bound)

    def recovered(self, what: str) -> None:
        self._failing.pop(what, None)

    def stuck(self) -> dict[str, float]:
        """Components failing for longer than their bound, with how long they have been failing."""
        now = time.monotonic()
        return {
            what: round(now - since, 3)
            for what, (since, bound) in self._failing.items()
            if now - since > bound
        }

    def alive(self) -> bool:
        return self.age() <= self.max_age and not self.stuck()


async def run_checks(
    checks: dict[str, ReadinessCheck], timeout: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, str]:
    """Run the readiness checks side by side; the result maps a dependency to 'ok' or its error.

    Each check is bounded: a client that retries a down server internally must not hold the
    probe past Kubernetes' timeout (3 s in the chart), and an unanswered check is a failed one.
    """

    async def run(check: ReadinessCheck) -> str:
        try:
            async with asyncio.timeout(timeout):
                await check()
            return "ok"
        except TimeoutError:
            return f"error: no answer within {timeout}s"
        except Exception as exc:  # a failed check is a report, not a crash
            return f"error: {type(exc).__name__}: {exc}"[:300]

    # A snapshot: a loop may add its own check while this one runs.
    items = list(checks.items())
    results = await asyncio.gather(*(run(check) for _, check in items))
    return {name: result for (name, _), result in zip(items, results, strict=True)}


def redis_check(client: object) -> ReadinessCheck:
    async def check() -> None:
        await client.ping()  # type: ignore[attr-defined]

    return check


def postgres_check(pool: object) -> ReadinessCheck:
    async def check() -> None:
        async with pool.connection(timeout=2.0) as conn:  # type: ignore[attr-defined]
            await conn.execute("SELECT 1")

    return check


def add_health_routes(
    app: web.Application,
    heartbeat: Heartbeat | None,
    checks: dict[str, ReadinessCheck],
    registry: CollectorRegistry = REGISTRY,
) -> None:
    """Register /healthz, /readyz and /metrics on an application (worker or HTTP service)."""

    async def healthz(_: web.Request) -> web.Response:
        if heartbeat is None or heartbeat.alive():
            age = None if heartbeat is None else round(heartbeat.age(), 3)
            return web.json_response({"status": "ok", "heartbeat_age_seconds": age})
        return web.json_response(
            {
                "status": "stalled",
                "heartbeat_age_seconds": round(heartbeat.age(), 3),
                "failing_seconds": heartbeat.stuck(),
            },
            status=503,
        )

    async def readyz(_: web.Request) -> web.Response:
        results = await run_checks(checks)
        ready = all(v == "ok" for v in results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results}, status=200 if ready else 503
        )

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        resp = web.Response(body=body)
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        resp.charset = "utf-8"
        return resp

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def start_probe_server(
    host: str,
    port: int,
    heartbeat: Heartbeat | None,
    checks: dict[str, ReadinessCheck],
) -> web.AppRunner:
    """Start the probe/metrics server; the caller cleans it up with `await runner.cleanup()`."""
    app = web.Application()
    add_health_routes(app, heartbeat, checks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
