"""GET /v1/ws: the same events over WebSocket, driven by JSON subscribe/unsubscribe messages.

Client messages:
  {"type": "subscribe", "symbols": ["AAPL"], "types": ["ticks", "bars"], "resume": "<event id>"}
  {"type": "unsubscribe", "symbols": ["AAPL"]}   (no symbols: stop all events)
The first subscribe starts the flow (replaying from `resume` if given); later ones add symbols
and types. Server messages: {"type": "tick"|"signal"|"bar", "id", "data"}, {"type": "heartbeat",
"id"}, {"type": "subscribed", ...} and {"type": "error", "code", "message"}.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from stocktrack_common.http_errors import ApiError
from streamer.access import check_access
from streamer.events import EVENT_TYPES, Event
from streamer.filters import parse_symbols, parse_types
from streamer.hub import Hub, ResumeTooOld
from streamer.positions import BadEventId
from streamer.pump import pump
from streamer.send_limits import SendLimits, bound_buffers, finish_or_abort
from streamer.sse import CLIENTS
from streamer.state import HUB, SETTINGS
from streamer.subscription import Subscription

MAX_MESSAGE_BYTES = 64 * 1024
# Acks name types as requests do ("ticks"), not as events are typed ("tick").
_PLURAL = {single: plural for plural, single in EVENT_TYPES.items()}


class ClientSession:
    """One WebSocket's subscription state; its pump task runs once the first subscribe arrives."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        hub: Hub,
        queue_limit: int,
        heartbeat: float,
        transport: asyncio.BaseTransport | None,
        limits: SendLimits,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.limits = limits
        self.hub = hub
        self.queue_limit = queue_limit
        self.heartbeat = heartbeat
        self.sub: Subscription | None = None
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(message).decode())

    async def error(self, code: str, message: str) -> None:
        await self.send({"type": "error", "code": code, "message": message})

    async def handle(self, raw: str) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.error("bad_request", "messages must be JSON")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if kind == "subscribe":
                await self.subscribe(message)
            elif kind == "unsubscribe":
                await self.unsubscribe(message)
            else:
                await self.error("bad_request", "type must be 'subscribe' or 'unsubscribe'")
        except ApiError as exc:
            await self.error(exc.code, exc.message)

    async def subscribe(self, message: dict[str, Any]) -> None:
        symbols = parse_symbols(message.get("symbols"))
        types = parse_types(message.get("types"))
        if self.sub is not None and not self.sub.types:
            # After "stop all" a subscribe starts afresh, exactly as a first one would filter.
            self.hub.set_symbols(self.sub, set(symbols) if symbols is not None else None)
            self.sub.types = types
            await self.ack()
            return
        if self.sub is not None:
            # Later subscribes widen the filter by what they name; an absent field changes nothing.
            if "symbols" in message:
                if symbols is None:
                    self.hub.set_symbols(self.sub, None)
                elif self.sub.symbols is not None:
                    self.hub.set_symbols(self.sub, self.sub.symbols | set(symbols))
            if "types" in message:
                self.sub.types |= types
            await self.ack()
            return
        resume = message.get("resume")
        if resume is not None and not isinstance(resume, str):
            await self.error("bad_event_id", "resume must be an event id string")
            return
        sub = Subscription(symbols, types, self.queue_limit, "ws")
        try:
            await self.hub.subscribe(sub, resume or None)
        except BadEventId as exc:
            await self.error("bad_event_id", str(exc))
            return
        except ResumeTooOld as exc:
            await self.error("resume_too_old", str(exc))
            return
        self.sub = sub
        await self.ack()
        self.task = asyncio.create_task(self.run_pump(sub))

    async def unsubscribe(self, message: dict[str, Any]) -> None:
        if self.sub is None:
            await self.error("bad_request", "not subscribed")
            return
        symbols = parse_symbols(message.get("symbols"))
        if symbols is None:
            self.sub.types = set()
        elif self.sub.symbols is None:
            await self.error("bad_request", "subscribed to every symbol; subscribe to a list to remove some")
            return
        else:
            self.hub.set_symbols(self.sub, self.sub.symbols - set(symbols))
        await self.ack()

    async def ack(self) -> None:
        assert self.sub is not None
        await self.send(
            {
                "type": "subscribed",
                "symbols": None if self.sub.symbols is None else sorted(self.sub.symbols),
                "types": sorted(_PLURAL[t] for t in self.sub.types),
            }
        )

    async def run_pump(self, sub: Subscription) -> None:
        async def send_events(batch: list[Event]) -> None:
            for event in batch:
                await self.ws.send_str(event.ws)

        async def send_heartbeat(event_id: str | None) -> None:
            await self.send({"type": "heartbeat", "id": event_id})

        async def send_dropped() -> None:
            message = "client fell too far behind; resubscribe with resume to continue"
            await finish_or_abort(self.transport, self.limits, self.error("slow_consumer", message))
            await finish_or_abort(
                self.transport, self.limits, self.ws.close(code=1013, message=b"slow consumer")
            )

        with contextlib.suppress(ConnectionError):
            await pump(
                sub,
                self.hub,
                self.heartbeat,
                self.transport,
                self.limits,
                send_events,
                send_heartbeat,
                send_dropped,
            )
        if sub.closing and not self.ws.closed:
            await self.ws.close(code=1001, message=b"server shutting down")

    async def close(self) -> None:
        if self.sub is not None:
            self.hub.unsubscribe(self.sub)
            self.sub.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self.task


async def websocket(request: web.Request) -> web.WebSocketResponse:
    await check_access(request)  # before the upgrade, so a refusal is a plain JSON 401/403
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(heartbeat=settings.streamer_heartbeat_seconds, max_msg_size=MAX_MESSAGE_BYTES)
    limits = settings.send_limits()
    bound_buffers(request.transport, limits)
    await ws.prepare(request)
    session = ClientSession(
        ws,
        request.app[HUB],
        settings.streamer_client_queue,
        settings.streamer_heartbeat_seconds,
        request.transport,
        limits,
    )
    with CLIENTS.labels("ws").track_inprogress():
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await session.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await session.error("bad_request", "send JSON text messages")
        finally:
            await session.close()
    return ws
