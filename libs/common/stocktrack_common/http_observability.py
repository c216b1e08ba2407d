"""Access logs and request metrics for the HTTP services, as one aiohttp middleware.

Metrics are labelled by route template (`/v1/bars/{symbol}`), never the raw path, so a client
walking through symbols cannot blow up the number of series. One JSON access-log line per
request carries the request id bound by request_id_middleware.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter, Histogram

from stocktrack_common.emf import EmfDistributions
from stocktrack_common.http_errors import Handler

access_log = structlog.get_logger("access")

REQUEST_SECONDS = Histogram(
    "stocktrack_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["service", "route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter(
    "stocktrack_http_errors_total",
    "HTTP responses with status >= 400 by route template",
    ["service", "route", "method", "status"],
)
# The client address as the service decided it (behind trusted proxies, not the peer).
CLIENT_IP: web.RequestKey[str] = web.RequestKey("client_ip", str)
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(request: web.Request) -> str:
    """The matched route's template, or a fixed label for requests that matched nothing."""
    match = request.match_info
    if getattr(match, "http_exception", None) is not None:
        return "unmatched"
    resource = match.route.resource
    return resource.canonical if resource is not None else "unmatched"


def add_emf_flush(app: web.Application, emf: EmfDistributions | None) -> None:
    """Flush the app's EMF distributions periodically, and once more at shutdown."""
    if emf is None:
        return

    async def flushing(_: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(emf.run(stop))
        yield
        stop.set()
        await task

    app.cleanup_ctx.append(flushing)


def observability_middleware(service: str, emf: EmfDistributions | None = None) -> Middleware:
    """Build the middleware for one service; `service` becomes a label and a log field.

    With `emf`, latencies also go out as CloudWatch EMF distributions (real p99s in
    CloudWatch, whose agent drops Prometheus histograms); see add_emf_flush.
    """

    # The labelled histogram per (route, method, status): prometheus_client's labels() validates
    # and locks on every call, a measurable part of a cheap request. As bounded as the series.
    histograms: dict[tuple[str, str, str], Histogram] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status_code
            raise
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(request)
            series = (route, request.method, str(status))
            histogram = histograms.get(series)
            if histogram is None:
                histogram = histograms[series] = REQUEST_SECONDS.labels(service, *series)
            histogram.observe(elapsed)
            if emf is not None:
                emf.observe("RequestLatency", elapsed, {"Route": route})
            if status >= 400:
                ERRORS.labels(service, *series).inc()
            if route not in _QUIET_ROUTES:
                access_log.info(
                    "request",
                    method=request.method,
                    route=route,
                    path=request.path,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                    remote=request.get(CLIENT_IP, request.remote),
                    user_agent=request.headers.get("User-Agent", "")[:200],
                )

    return middleware
