"""One connected client: what it wants, and the bounded backlog of events waiting to be sent."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from stocktrack_common.stream_ids import StreamId
from streamer.events import TIMER, Event


class Subscription:
    """Filled by the hub (synchronously, never blocking it), drained by the client's writer.

    When the backlog passes `limit` the client is marked dropped instead of slowing the hub or
    any other client; its writer then sends a final error event and closes.
    """

    __slots__ = ("closing", "dropped", "floor", "limit", "pending", "symbols", "transport", "types", "wake")

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

    def matches(self, event: Event) -> bool:
        return event.type in self.types and (self.symbols is None or event.symbol in self.symbols)

    def offer(self, event: Event) -> bool:
        """Queue the event if wanted; returns False when this client just fell too far behind."""
        if self.dropped or not self.matches(event):
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
        self.wake.set()
        return True

    def close(self) -> None:
        self.closing = True
        self.wake.set()
