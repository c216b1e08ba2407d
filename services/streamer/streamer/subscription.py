"""One connected client: what it wants, and the bounded backlog of events waiting to be sent."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable

from stocktrack_common.stream_ids import StreamId
from streamer.events import TIMER, Event

# Writes a batch at once if the connection takes it without waiting; False: leave it to the pump.
WriteNow = Callable[[deque[Event]], bool]


class Subscription:
    """Filled by the hub (synchronously, never blocking it), drained by the client's writer.

    The hub offers an event only to the subscriptions indexed under its symbol (the hub keeps
    that index; change `symbols` through `Hub.set_symbols`). After each read it hands every
    client that got events to `write_now`, which writes them straight onto the connection when
    the connection's buffer has room for them, so a client keeping up costs one write per read
    and no task switch; otherwise (no room, or the pump mid-send) the pump is woken and sends
    under the send deadline (send_limits).

    When the backlog passes `limit` the client is marked dropped instead of slowing the hub or
    any other client; its writer then sends a final error event and closes.
    """

    __slots__ = (
        "busy",
        "closing",
        "dropped",
        "floor",
        "limit",
        "pending",
        "sent_at",
        "symbols",
        "transport",
        "types",
        "wake",
        "write_now",
    )

    def __init__(
        self, symbols: Iterable[str] | None, types: Iterable[str], limit: int, transport: str
    ) -> None:
        self.symbols: set[str] | None = set(symbols) if symbols is not None else None
        self.types: set[str] = set(types)
        self.pending: deque[Event] = deque()
        self.wake = asyncio.Event()
        self.limit = limit
        self.dropped = False
        self.closing = False
        # Entries at or below this position were sent already (a resume from the streams).
        self.floor: tuple[StreamId, ...] | None = None
        self.transport = transport
        self.write_now: WriteNow | None = None  # set by a transport that can write without awaiting
        self.busy = False  # the pump is sending: nothing else may write before it is done
        self.sent_at = time.monotonic()  # last write: heartbeats are for idle connections only

    def matches(self, event: Event) -> bool:
        return event.type in self.types and (self.symbols is None or event.symbol in self.symbols)

    def offer(self, event: Event) -> bool:
        """Queue the event if its type is wanted (the hub matched its symbol); returns False when
        this client just fell too far behind. The hub flushes or wakes the client after its read."""
        if self.dropped or event.type not in self.types:
            return True
        # A timer's bar is sent live only, never replayed: it is never below the floor.
        if self.floor is not None and event.stream != TIMER and event.entry <= self.floor[event.stream]:
            return True
        if len(self.pending) >= self.limit:
            self.dropped = True
            self.pending.clear()
            self.wake.set()
            return False
        self.pending.append(event)
        return True

    def flush(self) -> int:
        """After the hub's read: write the backlog now if the connection has room, else wake the
        pump. Returns the number of events written here."""
        if not self.pending or self.dropped:
            return 0
        if self.write_now is not None and not self.busy and self.write_now(self.pending):
            sent = len(self.pending)
            self.pending.clear()
            self.sent_at = time.monotonic()
            return sent
        self.wake.set()
        return 0

    def close(self) -> None:
        self.closing = True
        self.wake.set()
