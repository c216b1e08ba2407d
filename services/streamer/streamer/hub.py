"""The hub: one XREAD loop over every tick shard and the signals stream, fanned out to clients.

XREAD without a group is a broadcast: every streamer replica sees every entry and acknowledges
nothing, so streamers never interfere with the writer's or recommender's groups. Entries of one
XREAD reply are merged across streams in entry-id order, and each event is numbered and kept in
a ring of recent events. A client resuming from an id still in the ring gets exactly the events
that followed it, in the very order other clients saw; an older id (or one from another replica)
is served from the streams themselves with XRANGE, in entry-id order.

Closed 1-minute bars (minute_bars.py) come from the ticks as they are read, and from a close
timer that wakes at each minute's end plus BAR_CLOSE_GRACE_MS: a quiet symbol's live bar is sent
then, without waiting for its next tick. The timer acts only while the reader is caught up (its
last read took every stream to its end); during a backlog the ticks alone close bars, so they
are not closed ahead of ticks still unread. A timer's bar is numbered after the entry the reader
stopped at (positions.py), so its id is unique and resumes like any other.

Fan-out costs what is delivered, not clients times events: subscriptions are indexed by symbol
(plus those wanting every symbol), each event is serialised once however many clients get it
(events.py), and after each read every client that got events is flushed once
(Subscription.flush): written straight onto its connection when that has room, its pump task
woken only when it does not.

On a Redis Cluster the streams live in different slots, so the loop keeps one XREAD per slot in
flight (stocktrack_common.slot_reads) and merges whatever each returns in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter, Gauge

from stocktrack_common.bar_closing import sleep_until_close
from stocktrack_common.bars import MINUTE_MS, Bar
from stocktrack_common.health import Heartbeat
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import MessageError, decode_signal, decode_tick
from stocktrack_common.redis_client import is_cluster
from stocktrack_common.slot_reads import InFlightReads, slot_groups
from stocktrack_common.stream_ids import StreamId, format_stream_id, parse_stream_id
from streamer.events import TIMER, Event
from streamer.minute_bars import MinuteBars, bar_event
from streamer.positions import ZERO, Position, PositionCodec
from streamer.subscription import Subscription

log = structlog.get_logger(__name__)

EVENTS_READ = Counter("stocktrack_streamer_events_total", "Events produced from the streams", ["type"])
MALFORMED = Counter("stocktrack_streamer_malformed_entries_total", "Stream entries that failed to decode")
DROPPED = Counter(
    "stocktrack_streamer_clients_dropped_total", "Clients dropped for falling behind", ["transport"]
)
RESUMES = Counter(
    "stocktrack_streamer_resumes_total", "Resumed subscriptions by where the replay came from", ["source"]
)
READ_ERRORS = Counter("stocktrack_streamer_read_errors_total", "Failed XREAD calls (retried)")
SENT = Counter("stocktrack_streamer_events_sent_total", "Events written to clients", ["transport"])
LATE_TICKS = Counter(
    "stocktrack_streamer_late_ticks_total",
    "Ticks of a minute whose bar was already sent (after its end plus BAR_CLOSE_GRACE_MS): not in any bar event",
)
LAG = Gauge("stocktrack_streamer_read_lag_seconds", "Age of the newest entry read when it was read")
# Label lookups cost more than the increments; these run per event and per flush.
_EVENTS_READ = {kind: EVENTS_READ.labels(kind) for kind in ("tick", "signal", "bar")}
_SENT = {transport: SENT.labels(transport) for transport in ("sse", "ws")}

RawEntry = tuple[StreamId, int, dict[bytes, bytes]]


class ResumeTooOld(Exception):
    """More entries were missed than a resume may replay; the client must start afresh."""


class Hub:
    def __init__(
        self,
        redis: aioredis.Redis,
        tick_streams: list[str],
        signal_stream: str,
        *,
        ring_size: int,
        read_count: int,
        block_ms: int,
        max_replay: int,
        heartbeat: Heartbeat,
        grace_ms: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.streams = [*tick_streams, signal_stream]
        self.signal_index = len(tick_streams)
        self.codec = PositionCodec(self.streams)
        self.position: list[StreamId] = [ZERO] * len(self.streams)
        self.ring: deque[Event] = deque()
        self.ring_size = ring_size
        self.ring_seq: dict[str, int] = {}
        self.next_seq = 0
        self.last_id: str | None = None
        self.subscriptions: set[Subscription] = set()
        # The same subscriptions by the symbols they want; `every_symbol` wants them all.
        self.by_symbol: dict[str, set[Subscription]] = {}
        self.every_symbol: set[Subscription] = set()
        self.grace_ms = grace_ms
        self.bars = MinuteBars(grace_ms)
        self.clock = clock  # wall time in seconds: the close timer's, a parameter so tests can shift it
        # Whether the last read took every stream to its end (fewer entries than read_count each).
        self.caught_up = True
        # Bars sent since the reader's position last moved: numbers the next bar's id.
        self.bars_at_position = 0
        self.read_count = read_count
        self.block_ms = block_ms
        self.max_replay = max_replay
        self.heartbeat = heartbeat
        self.started = asyncio.Event()
        self._index = {s: k for k, s in enumerate(self.streams)}
        groups = slot_groups(self.streams, is_cluster(redis))
        self._in_flight: InFlightReads[Any] | None = (
            InFlightReads(groups, self._read_slot) if len(groups) > 1 else None
        )

    # -- reading ---------------------------------------------------------------------------

    async def start_positions(self) -> None:
        """Begin at the current end of every stream (new clients want what happens next)."""
        for k, stream in enumerate(self.streams):
            newest: Any = await self.redis.xrevrange(stream, count=1)
            self.position[k] = parse_stream_id(newest[0][0]) if newest else ZERO
        self.started.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and not self.started.is_set():
            self.heartbeat.beat()
            try:
                await self.start_positions()
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                READ_ERRORS.inc()
                log.warning("waiting for redis", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
        closer = asyncio.create_task(self._close_loop(stop), name="streamer-bar-closer")
        try:
            await self._read_loop(stop)
        finally:
            closer.cancel()
            if self._in_flight is not None:
                self._in_flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer

    async def _read_slot(self, streams: list[str]) -> Any:
        """XREAD of streams in one slot (all of them on a single Redis), from the hub's positions."""
        return await self.redis.xread(
            {s: format_stream_id(self.position[self._index[s]]) for s in streams},
            count=self.read_count,
            block=self.block_ms,
        )

    async def _read_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.heartbeat.beat()
            try:
                if self._in_flight is None:
                    reply = await self._read_slot(self.streams)
                else:
                    reply = [pair for result in await self._in_flight.next() for pair in result or []]
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                READ_ERRORS.inc()
                log.warning("xread failed; retrying", error=f"{type(exc).__name__}: {exc}")
                await sleep_or_stop(stop, 0.5)
                continue
            self.caught_up = all(len(items) < self.read_count for _, items in reply or ())
            if reply:
                self.dispatch(self._merge(reply))

    async def _close_loop(self, stop: asyncio.Event) -> None:
        """Wake at each minute's end plus grace and send the live bars then due, ticks or no ticks."""
        while not stop.is_set():
            await sleep_until_close(stop, MINUTE_MS, self.grace_ms, clock=self.clock)
            if not stop.is_set():
                self.close_due()

    def close_due(self) -> None:
        """Send the live bars whose end plus grace has passed, unless a backlog is still being read."""
        if not self.caught_up:
            return
        closed = self.bars.close_due(int(self.clock() * 1000))
        earlier = self.bars_at_position
        self._fan_out(
            self._bar_event(symbol, bar, self.position, earlier + n, None)
            for n, (symbol, bar) in enumerate(closed)
        )

    def _merge(self, reply: Any) -> list[RawEntry]:
        index = self._index
        entries: list[RawEntry] = []
        for name, items in reply:
            k = index[name.decode() if isinstance(name, bytes) else name]
            entries.extend((parse_stream_id(eid), k, fields) for eid, fields in items)
        entries.sort(key=lambda e: (e[0], e[1]))
        return entries

    def _events(self, entries: list[RawEntry], position: list[StreamId], bars: MinuteBars) -> Iterator[Event]:
        """Turn raw entries into events, advancing `position` (the hub's, or a replay's own copy)."""
        for entry, k, fields in entries:
            position[k] = entry
            try:
                if k == self.signal_index:
                    signal = decode_signal(fields)
                    yield Event(
                        self.codec.encode(position),
                        "signal",
                        signal.symbol,
                        k,
                        entry,
                        signal.model_dump(mode="json", exclude={"v"}),
                    )
                    continue
                tick = decode_tick(fields)
            except MessageError:
                MALFORMED.inc()
                continue
            yield Event(
                self.codec.encode(position),
                "tick",
                tick.symbol,
                k,
                entry,
                {
                    "symbol": tick.symbol,
                    "ts": tick.ts,
                    "price": format(tick.price, "f"),
                    "size": tick.size,
                    "source": tick.source,
                },
            )
            closed, used = bars.add(tick)
            if not used and bars is self.bars:
                LATE_TICKS.inc()
            for n, bar in enumerate(closed):
                yield self._bar_event(tick.symbol, bar, position, n, (k, entry))

    def _bar_event(
        self,
        symbol: str,
        bar: Bar,
        position: list[StreamId],
        earlier: int,
        closed_by: tuple[int, StreamId] | None,
    ) -> Event:
        """A closed bar's event; `earlier` bars were sent at this position before it.

        `closed_by` is the tick entry whose time closed it; None for the close timer's bars.
        """
        k, entry = closed_by if closed_by is not None else (TIMER, ZERO)
        return Event(
            self.codec.encode(position, after_bar=earlier + 1),
            "bar",
            symbol,
            k,
            entry,
            bar_event(symbol, bar),
        )

    def _fan_out(self, events: Iterator[Event]) -> None:
        """Offer each event to the clients of its symbol, then flush each of them once."""
        touched: set[Subscription] = set()
        by_symbol, every_symbol = self.by_symbol, self.every_symbol
        for event in events:
            _EVENTS_READ[event.type].inc()
            self._remember(event)
            for group in (by_symbol.get(event.symbol), every_symbol):
                if group:
                    touched |= group
                    for sub in group:
                        if not sub.offer(event):
                            DROPPED.labels(sub.transport).inc()
            self.last_id = event.id
            self.bars_at_position = self.bars_at_position + 1 if event.type == "bar" else 0
        for sub in touched:
            sent = sub.flush()
            if sent:
                _SENT[sub.transport].inc(sent)

    def dispatch(self, entries: list[RawEntry]) -> None:
        """Number, remember and fan out; synchronous, so no client can observe half a batch."""
        if entries:
            LAG.set(max(0.0, time.time() - entries[-1][0][0] / 1000))
        self._fan_out(self._events(entries, self.position, self.bars))

    def _remember(self, event: Event) -> None:
        if self.ring_size == 0:
            return
        self.ring.append(event)
        self.ring_seq[event.id] = self.next_seq
        self.next_seq += 1
        if len(self.ring) > self.ring_size:
            self.ring_seq.pop(self.ring.popleft().id, None)

    # -- subscribing -----------------------------------------------------------------------

    def parse_resume(self, event_id: str) -> Position:
        return self.codec.decode(event_id)

    async def subscribe(self, sub: Subscription, resume: str | None) -> None:
        """Register a client; with `resume`, first queue everything it missed after that id."""
        await self.started.wait()
        if resume is None:
            RESUMES.labels("none").inc()
            self._register(sub)
            return
        position = self.codec.decode(resume)
        seq = self.ring_seq.get(resume)
        if seq is not None:
            first = seq + 1 - (self.next_seq - len(self.ring))
            sub.pending.extend(e for e in list(self.ring)[first:] if sub.matches(e))
            sub.limit += len(sub.pending)
            self._register(sub)
            RESUMES.labels("ring").inc()
            return
        await self._resume_from_streams(sub, position)
        RESUMES.labels("streams").inc()

    async def _resume_from_streams(self, sub: Subscription, position: Position) -> None:
        # An id from a replica that is ahead of this one: let this reader catch up first, so
        # every live event sent afterwards lies beyond the client's position in every stream.
        deadline = time.monotonic() + 2.0
        while any(c > h for c, h in zip(position.entries, self.position, strict=True)):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        snapshot = list(self.position)
        sub.floor = tuple(max(c, h) for c, h in zip(position.entries, snapshot, strict=True))
        self._register(sub)  # live events from here on queue up behind the replay
        try:
            replay = await self._read_range(position.entries, snapshot)
        except BaseException:
            self.unsubscribe(sub)
            raise
        # Replayed ids are built from the client's own position forward; replayed bars start
        # with fresh state, so only bars that begin inside the replay are sent.
        events = [
            e
            for e in self._events(replay, list(position.entries), MinuteBars(self.grace_ms))
            if sub.matches(e)
        ]
        sub.pending.extendleft(reversed(events))
        sub.limit += len(events)
        if events:
            sub.wake.set()

    async def _read_range(self, after: tuple[StreamId, ...], upto: list[StreamId]) -> list[RawEntry]:
        streams: list[list[RawEntry]] = []
        total = 0
        for k, stream in enumerate(self.streams):
            if upto[k] <= after[k]:
                continue
            items: Any = await self.redis.xrange(
                stream,
                min=f"({format_stream_id(after[k])}",
                max=format_stream_id(upto[k]),
                count=self.max_replay + 1,
            )
            total += len(items)
            if total > self.max_replay:
                raise ResumeTooOld(f"more than {self.max_replay} events were missed")
            streams.append([(parse_stream_id(eid), k, fields) for eid, fields in items])
        return list(heapq.merge(*streams, key=lambda e: (e[0], e[1])))

    def _register(self, sub: Subscription) -> None:
        self.subscriptions.add(sub)
        self._index_symbols(sub)

    def _index_symbols(self, sub: Subscription) -> None:
        if sub.symbols is None:
            self.every_symbol.add(sub)
            return
        for symbol in sub.symbols:
            self.by_symbol.setdefault(symbol, set()).add(sub)

    def _unindex_symbols(self, sub: Subscription) -> None:
        if sub.symbols is None:
            self.every_symbol.discard(sub)
            return
        for symbol in sub.symbols:
            group = self.by_symbol.get(symbol)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self.by_symbol[symbol]

    def set_symbols(self, sub: Subscription, symbols: set[str] | None) -> None:
        """Change what a client wants (None: every symbol), keeping the symbol index in step."""
        registered = sub in self.subscriptions
        if registered:
            self._unindex_symbols(sub)
        sub.symbols = symbols
        if registered:
            self._index_symbols(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscriptions:
            self.subscriptions.discard(sub)
            self._unindex_symbols(sub)

    def close_all(self) -> None:
        for sub in list(self.subscriptions):
            sub.close()
