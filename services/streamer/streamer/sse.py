"""GET /v1/stream: Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import orjson
from aiohttp import web
from prometheus_client import Gauge

from stocktrack_common.http_errors import ApiError
from streamer.access import check_access
from streamer.events import Event
from streamer.filters import parse_symbols, parse_types
from streamer.hub import ResumeTooOld
from streamer.positions import BadEventId
from streamer.pump import pump
from streamer.send_limits import SendLimits, Writable, bound_buffers, finish_or_abort
from streamer.state import HUB, SETTINGS
from streamer.subscription import Subscription

CLIENTS = Gauge("stocktrack_streamer_clients", "Connected clients", ["transport"])


def direct_writer(
    transport: asyncio.BaseTransport | None, limits: SendLimits, chunked: bool
) -> Callable[[Iterable[Event]], bool]:
    """The hub's way to write events without a task switch (Subscription.flush).

    Once the response has started, its body is just these bytes (one HTTP chunk per write, as
    aiohttp frames `response.write`), so they go straight to the transport, but only when the
    connection's buffer has room for them: such a send is complete at once, within any deadline.
    A connection without room gets its events from the pump, which times the send (send_limits).
    """

    writable = transport if isinstance(transport, Writable) else None

    def write_now(events: Iterable[Event]) -> bool:
        if writable is None or writable.is_closing():
            return False
        body = b"".join(e.sse for e in events)
        if chunked:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        if writable.get_write_buffer_size() + len(body) > limits.buffer_bytes:
            return False
        writable.write(body)
        return True

    return write_now


def resume_id(request: web.Request) -> str | None:
    """Browsers resend Last-Event-ID themselves; `last_event_id` serves the first connection."""
    value = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    return value.strip() if value and value.strip() else None


async def stream(request: web.Request) -> web.StreamResponse:
    await check_access(request)
    hub, settings = request.app[HUB], request.app[SETTINGS]
    sub = Subscription(
        parse_symbols(request.query.get("symbols")),
        parse_types(request.query.get("types")),
        settings.streamer_client_queue,
        "sse",
    )
    resume = resume_id(request)
    try:
        await hub.subscribe(sub, resume)
    except BadEventId as exc:
        raise ApiError(400, str(exc), code="bad_event_id") from exc
    except ResumeTooOld as exc:
        raise ApiError(410, str(exc), code="resume_too_old") from exc
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    response.force_close()  # an event stream is never followed by another request on its connection
    limits = settings.send_limits()
    transport = request.transport
    try:
        bound_buffers(transport, limits)
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")

        async def send_events(batch: list[Event]) -> None:
            await response.write(b"".join(e.sse for e in batch))

        sub.write_now = direct_writer(
            transport, limits, response.headers.get("Transfer-Encoding") == "chunked"
        )

        async def send_heartbeat(event_id: str | None) -> None:
            id_line = b"id: %s\n" % event_id.encode() if event_id else b""
            await response.write(b"event: heartbeat\n%sdata: {}\n\n" % id_line)

        async def send_dropped() -> None:
            body = orjson.dumps(
                {
                    "code": "slow_consumer",
                    "message": "client fell too far behind; reconnect with Last-Event-ID to resume",
                }
            )
            await finish_or_abort(transport, limits, response.write(b"event: error\ndata: %s\n\n" % body))
            await finish_or_abort(transport, limits, response.write_eof())

        with CLIENTS.labels("sse").track_inprogress():
            await pump(
                sub,
                hub,
                settings.streamer_heartbeat_seconds,
                transport,
                limits,
                send_events,
                send_heartbeat,
                send_dropped,
            )
    except ConnectionError:
        pass  # the client went away
    finally:
        hub.unsubscribe(sub)
    return response
