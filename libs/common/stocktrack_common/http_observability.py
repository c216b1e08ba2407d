"""Access logs and request metrics for the HTTP services, recorded by http_middleware.

Metrics are labelled by route template (`/v1/bars/{symbol}`), never the raw path, so a client
walking through symbols cannot blow up the number of series. One JSON access-log line per
request carries the request id bound by http_middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import Counter, Histogram

from stocktrack_common.emf import EmfDistributions

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


RequestRecorder = Callable[[web.Request, int, float], None]
"""Records one answered request: its metrics and its access-log line, given status and seconds."""


def request_recorder(service: str, emf: EmfDistributions | None = None) -> RequestRecorder:
    """Build the recorder for one service; `service` becomes a label and a log field.

    With `emf`, latencies also go out as CloudWatch EMF distributions (real p99s in
    CloudWatch, whose agent drops Prometheus histograms); see add_emf_flush.
    """

    # The labelled histogram per (route, method, status): prometheus_client's labels() validates
    # and locks on every call, a measurable part of a cheap request. As bounded as the series.
    histograms: dict[tuple[str, str, str], Histogram] = {}
    # The EMF series per route, for the same reason (its dimensions are checked and sorted once).
    latencies: dict[str, Callable[[float], None]] = {}
    # The access logger's `info`, taken from the module's lazy proxy at the first request (logging
    # is configured by then, and the proxy keeps the logger of its first use anyway): the proxy
    # would look the logger up again on every line.
    log_info: Callable[..., Any] | None = None

    def record(request: web.Request, status: int, elapsed: float) -> None:
        nonlocal log_info
        route = route_template(request)
        method = request.method
        series = (route, method, str(status))
        histogram = histograms.get(series)
        if histogram is None:
            histogram = histograms[series] = REQUEST_SECONDS.labels(service, *series)
        histogram.observe(elapsed)
        if emf is not None:
            latency = latencies.get(route)
            if latency is None:
                latency = latencies[route] = emf.series("RequestLatency", {"Route": route})
            latency(elapsed)
        if status >= 400:
            ERRORS.labels(service, *series).inc()
        if route not in _QUIET_ROUTES:
            if log_info is None:
                log_info = access_log.bind().info
            log_info(
                "request",
                method=method,
                route=route,
                path=request.path,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                remote=request.get(CLIENT_IP, request.remote),
                user_agent=request.headers.get("User-Agent", "")[:200],
            )

    return record
