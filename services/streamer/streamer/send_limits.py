"""How much a client may leave untaken, and for how long, before it counts as a slow consumer.

`write()` returns as soon as bytes are handed on, so the backlog of events alone cannot see a
client that stopped reading: the kernel's send buffer (autotuned to megabytes) and the
transport's buffer absorb everything. So the kernel buffer is capped per connection, and every
send must end with the transport's buffer back under the bound within a deadline; a client that
cannot take that much in that time has stopped keeping up.

Transports are recognised by what they can do (`Writable`), not by class: uvloop's, which the
streamer runs on, are not subclasses of asyncio.WriteTransport, and a class check would quietly
skip the buffer cap and the drain wait there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DRAIN_POLL_SECONDS = 0.02
FINAL_GRACE = 2.0  # the final error event may take this many send deadlines


@runtime_checkable
class Writable(Protocol):
    """The part of a write transport the limits use (asyncio's and uvloop's alike)."""

    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class SendLimits:
    buffer_bytes: int  # kernel send buffer cap and transport high-water mark, per connection
    timeout_seconds: float  # a send (write + drain below buffer_bytes) must finish within this


def bound_buffers(transport: asyncio.BaseTransport | None, limits: SendLimits) -> None:
    """Cap the kernel's send buffer so untaken bytes pile up where the deadline can see them."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.buffer_bytes)
    if isinstance(transport, Writable):
        transport.set_write_buffer_limits(high=limits.buffer_bytes)


async def send_within(
    transport: asyncio.BaseTransport | None,
    limits: SendLimits,
    send: Awaitable[object],
    *,
    grace: float = 1.0,
) -> bool:
    """Run one send and wait until the client has taken it down to the bound; False if too slow."""
    try:
        async with asyncio.timeout(limits.timeout_seconds * grace):
            await send
            while (
                isinstance(transport, Writable)
                and not transport.is_closing()
                and transport.get_write_buffer_size() > limits.buffer_bytes
            ):
                await asyncio.sleep(DRAIN_POLL_SECONDS)
    except TimeoutError:
        return False
    return True


async def finish_or_abort(
    transport: asyncio.BaseTransport | None, limits: SendLimits, last: Awaitable[object]
) -> None:
    """Send the final message, allowing the client twice the deadline to take it, then cut it off.

    The longer grace is for a client that resumes reading just now: TCP reopens a window that
    was closed for long only at its next (backed-off) window probe.
    """
    if not await send_within(transport, limits, last, grace=FINAL_GRACE) and isinstance(transport, Writable):
        transport.abort()
