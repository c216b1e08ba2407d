"""The small HTTP server each worker runs for Kubernetes probes and Prometheus scrapes."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from stocktrack_common.health import Heartbeat, ReadinessCheck, run_checks


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
            {"status": "stalled", "heartbeat_age_seconds": round(heartbeat.age(), 3)}, status=503
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


async def start_worker_http(
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
