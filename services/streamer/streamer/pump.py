"""The loop that drains one client's backlog onto its connection, whatever the transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from streamer.events import Event
from streamer.hub import DROPPED, SENT, Hub
from streamer.send_limits import SendLimits, send_within
from streamer.subscription import Subscription


async def pump(
    sub: Subscription,
    hub: Hub,
    heartbeat_seconds: float,
    transport: asyncio.BaseTransport | None,
    limits: SendLimits,
    send_events: Callable[[list[Event]], Awaitable[None]],
    send_heartbeat: Callable[[str | None], Awaitable[None]],
    send_dropped: Callable[[], Awaitable[None]],
) -> None:
    """Send events in batches as they come; a heartbeat when idle; a final error if dropped.

    A heartbeat carries the hub's newest event id, which is a valid resume point for this
    client because its backlog is empty at that moment: everything up to that id was sent or
    filtered out. Clients with a quiet filter thus resume from a recent point, not an old one.
    Events the hub wrote straight onto the connection (Subscription.flush) count as activity.

    Every send must be taken by the client (see send_limits) within the deadline; one that is
    not marks the client dropped, exactly like a backlog past the queue limit.
    """
    sent = SENT.labels(sub.transport)
    while True:
        if sub.dropped:
            await send_dropped()
            return
        if sub.closing:
            return
        if not sub.pending:
            sub.wake.clear()
            try:
                async with asyncio.timeout(heartbeat_seconds - (time.monotonic() - sub.sent_at)):
                    await sub.wake.wait()
            except TimeoutError:
                idle = time.monotonic() - sub.sent_at >= heartbeat_seconds
                if idle and not sub.pending and not sub.dropped:
                    heartbeat = send_heartbeat(hub.last_id if sub.floor is None else None)
                    if not await sent_in_time(sub, transport, limits, heartbeat):
                        too_slow(sub)
            continue
        batch = list(sub.pending)
        sub.pending.clear()
        if not await sent_in_time(sub, transport, limits, send_events(batch)):
            too_slow(sub)
            continue
        sent.inc(len(batch))


async def sent_in_time(
    sub: Subscription, transport: asyncio.BaseTransport | None, limits: SendLimits, send: Awaitable[None]
) -> bool:
    """send_within, with the hub kept from writing to this client until the send is done."""
    sub.busy = True
    try:
        return await send_within(transport, limits, send)
    finally:
        sub.busy = False
        sub.sent_at = time.monotonic()


def too_slow(sub: Subscription) -> None:
    if not sub.dropped:
        sub.dropped = True
        sub.pending.clear()
        DROPPED.labels(sub.transport).inc()
