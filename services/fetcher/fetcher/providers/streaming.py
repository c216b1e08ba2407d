"""What every streaming provider does around its own messages, written once.

A provider's trade WebSocket allows one connection and a limited number of symbols. This base
keeps one connection for the whole watch list: connect, authenticate, subscribe, keep it alive
(WebSocket pings), reconnect with backoff and jitter, and fill the gap over REST after a drop.
Symbols beyond the plan's cap, and every symbol while the stream is unavailable, are polled over
REST instead (`poll`), so a longer watch list degrades to polling rather than to a reconnect storm.

Subclasses say only what is provider-specific: the URL, the handshake, the subscribe messages,
how to read a message (`handle`), how to fetch a gap, and how to poll. They report what the
server did with `confirm` (the symbols it streams now), `limit_reached` (a subscribe was refused
as over the plan's limit; subscriptions stay as they were) and by raising `StreamFatal` (nothing
but a new setting can help: the stream stops and polling takes over all symbols).

After a drop, gap trades go out first and live trades that arrive meanwhile are held back, so
order per symbol holds; the trade identities remove the overlap. A gap that cannot be fetched is
logged with its window and counted, never skipped silently. A provider's corrections and cancels
of trades (`TradeAmendment`) travel with the trades, in the order the server sent them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

import aiohttp
import orjson
import structlog

from fetcher.provider_metrics import GAP_BACKFILLS, STREAM_RECONNECTS, STREAMED_SYMBOLS, observe_quote_lag
from fetcher.providers.errors import MalformedResponse, ProviderError
from fetcher.quotes import Quote
from fetcher.tick_builder import TickBuilder
from fetcher.watchlist import WatchList
from stocktrack_common.backoff import backoff_delay
from stocktrack_common.health import ReadinessCheck
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import Tick, TradeAmendment

Batch = list[Tick | TradeAmendment]

log = structlog.get_logger(__name__)


class StreamRejected(Exception):
    """The server answered with an error that a reconnect may cure (connection limit, slow client)."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(f"stream error {code}: {message}")
        self.code = code
        self.message = message


class StreamFatal(StreamRejected):
    """An error no reconnect cures (rejected key, plan without this feed); `setting` says what to fix."""

    def __init__(self, code: Any, message: str, setting: str) -> None:
        super().__init__(code, message)
        self.setting = setting


class StreamClosed(Exception):
    pass


def now_ms() -> int:
    return int(time.time() * 1000)


class StreamConnection:
    """One open socket: JSON messages in and out, always as lists of objects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, provider: str, handshake_timeout: float) -> None:
        self.ws = ws
        self.provider = provider
        self.handshake_timeout = handshake_timeout

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(message).decode())

    async def receive(self, timeout: float) -> list[dict[str, Any]] | None:
        """Next message as a list of objects; None on timeout; StreamClosed when the socket ends."""
        try:
            msg = await self.ws.receive(timeout=timeout)
        except TimeoutError:
            return None
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            raise StreamClosed()
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return []
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            log.warning("unparseable stream message dropped", provider=self.provider)
            return []
        items = data if isinstance(data, list) else [data]
        return [item for item in items if isinstance(item, dict)]

    async def expect(self, accept: Any) -> dict[str, Any]:
        """Wait (up to the handshake timeout) for the first object `accept(item)` is true of.

        `accept` may raise (StreamRejected, StreamFatal) to end the wait on an error message.
        """
        deadline = time.monotonic() + self.handshake_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            for item in await self.receive(remaining) or []:
                if accept(item):
                    return item


class StreamTuning(TypedDict, total=False):
    """How a trade stream paces itself: the same knobs for every provider, passed to the base as is."""

    max_symbols: int
    poll_interval: float
    backoff_base: float
    backoff_cap: float
    heartbeat_seconds: float
    handshake_timeout: float


class StreamingSource:
    """Base of the trade streams; see the module docstring for what a subclass provides."""

    name = "stream"
    provider = "stream"
    # The setting to fix when the server refuses the WebSocket upgrade itself (401/403).
    key_setting = "the provider's API key"
    # Symbols one connection may stream on the provider's free plan (each provider sets it),
    # unless `max_symbols` says otherwise.
    default_max_symbols: int

    def __init__(
        self,
        watchlist: WatchList,
        *,
        max_symbols: int | None = None,
        poll_interval: float = 60.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        heartbeat_seconds: float = 30.0,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.watchlist = watchlist
        self.cap = self.default_max_symbols if max_symbols is None else max_symbols
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.heartbeat = heartbeat_seconds
        self.handshake_timeout = handshake_timeout
        self.builder = TickBuilder()
        self.connections = 0
        self.streamed: list[str] = []
        self.disabled_reason: str | None = None
        self._pending: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._healthy_session = False
        self._gap_start: int | None = None

    # ---- what a provider implements -------------------------------------------------------

    def url(self) -> str:
        raise NotImplementedError

    async def handshake(self, conn: StreamConnection) -> None:
        """Greeting and authentication; nothing for providers that authenticate in the URL."""

    async def subscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        raise NotImplementedError

    async def unsubscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        raise NotImplementedError

    async def await_subscription(self, conn: StreamConnection, symbols: list[str]) -> None:
        """Wait for the server to confirm the first subscription (default: no confirmation exists)."""
        self.confirm(symbols)

    def handle(self, item: dict[str, Any]) -> Sequence[Quote | TradeAmendment]:
        """Quotes (and trade amendments) in one message; control messages call confirm/limit_reached or raise."""
        raise NotImplementedError

    async def gap_trades(self, symbol: str, start: datetime, end: datetime) -> list[Quote] | None:
        """The trades of [start, end) over REST, or None when the provider keeps no such history."""
        return None

    async def poll(self, symbols: list[str]) -> list[Quote]:
        """Latest quotes of symbols not on the stream."""
        raise NotImplementedError

    async def close_rest(self) -> None:
        """Close the provider's REST client."""

    # ---- what the server said --------------------------------------------------------------

    def confirm(self, symbols: list[str]) -> None:
        """The server now streams exactly `symbols`."""
        self.streamed = [s for s in symbols if isinstance(s, str)]
        self._pending.difference_update(self.streamed)
        STREAMED_SYMBOLS.labels(self.provider).set(len(self.streamed))

    def limit_reached(self) -> None:
        """A subscribe went over the plan's symbol limit; the server kept the previous subscriptions."""
        refused = sorted(self._pending)
        self._pending.clear()
        self.cap = len(self.streamed) if self.streamed else max(1, self.cap // 2)
        log.warning(
            "stream symbol limit reached; the refused symbols are polled instead",
            provider=self.provider,
            streamed=len(self.streamed),
            refused=len(refused),
        )

    # ---- the machinery ---------------------------------------------------------------------

    def stream_targets(self) -> list[str]:
        return [] if self.disabled_reason is not None else list(self.watchlist.symbols)[: self.cap]

    def polled_symbols(self) -> list[str]:
        """Symbols beyond the stream's cap (all of them once the stream is off).

        A streamed symbol is not polled while the socket reconnects: its gap is filled from
        REST history afterwards, in order, which polling would only interleave.
        """
        on_stream = set(self.stream_targets())
        return [s for s in self.watchlist.symbols if s not in on_stream]

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        async def stream() -> None:
            if self.disabled_reason is not None:
                raise RuntimeError(f"{self.provider} stream off, polling instead: {self.disabled_reason}")

        return {"stream": stream}

    async def batches(self, stop: asyncio.Event) -> AsyncIterator[Batch]:
        queue: asyncio.Queue[Batch] = asyncio.Queue()
        await self.watchlist.refresh()
        self.watchlist.changed.clear()
        tasks = [
            asyncio.create_task(self._run(stop, queue)),
            asyncio.create_task(self._poll_loop(stop, queue)),
            asyncio.create_task(self.watchlist.run(stop)),
        ]
        try:
            while not stop.is_set():
                try:
                    batch = await asyncio.wait_for(queue.get(), timeout=0.5)
                except TimeoutError:
                    for task in tasks[:2]:
                        if task.done() and task.exception() is not None:
                            task.result()
                    continue
                observe_quote_lag(batch, time.time())
                yield batch
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, stop: asyncio.Event, queue: asyncio.Queue[Batch]) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._connect_once(stop, queue)
                reason = "closed by server"
            except StreamFatal as exc:
                self.disabled_reason = f"error {exc.code} {exc.message!r}; check {exc.setting}"
                self.streamed, self._pending = [], set()
                STREAMED_SYMBOLS.labels(self.provider).set(0)
                log.error(
                    "stream unavailable; polling every symbol instead",
                    provider=self.provider,
                    code=exc.code,
                    error=exc.message,
                    setting=exc.setting,
                )
                return
            except StreamRejected as exc:
                reason = f"rejected ({exc.code})"
            except (aiohttp.ClientError, TimeoutError, StreamClosed, MalformedResponse) as exc:
                reason = type(exc).__name__
            self.streamed, self._pending = [], set()
            if stop.is_set():
                return
            if self._gap_start is None:
                self._gap_start = now_ms()
            if self._healthy_session:
                attempt = 0
            delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
            attempt += 1
            STREAM_RECONNECTS.labels(self.provider).inc()
            log.warning(
                "trade stream dropped; reconnecting",
                provider=self.provider,
                reason=reason,
                delay_s=round(delay, 3),
            )
            await sleep_or_stop(stop, delay)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _connect_once(self, stop: asyncio.Event, queue: asyncio.Queue[Batch]) -> None:
        self._healthy_session = False
        try:
            ws = await self._client().ws_connect(self.url(), heartbeat=self.heartbeat)
        except aiohttp.WSServerHandshakeError as exc:
            # The upgrade itself was refused: a key in the URL (Finnhub) is checked here.
            if exc.status in (401, 403):
                raise StreamFatal(exc.status, "WebSocket upgrade refused", self.key_setting) from None
            raise
        async with ws:
            conn = StreamConnection(ws, self.provider, self.handshake_timeout)
            await self.handshake(conn)
            targets = self.stream_targets()
            self._pending = set(targets)
            await self.subscribe(conn, targets)
            await self.await_subscription(conn, targets)
            resubscribed_at = now_ms()
            self.connections += 1
            self._healthy_session = True
            log.info(
                "trade stream subscribed",
                provider=self.provider,
                streamed=len(self.streamed),
                polled=len(self.polled_symbols()),
                connection=self.connections,
            )
            backfill: asyncio.Task[list[Quote]] | None = None
            held: list[Quote | TradeAmendment] = []
            if self._gap_start is not None:
                backfill = asyncio.create_task(
                    self._fetch_gap(list(self.streamed), self._gap_start, resubscribed_at)
                )
            try:
                while not stop.is_set():
                    live = self._quotes(await conn.receive(0.5) or [])
                    if backfill is not None:
                        held.extend(live)
                        if backfill.done():
                            await self._emit(queue, [*backfill.result(), *held])
                            backfill, held = None, []
                            self._gap_start = None
                    elif live:
                        await self._emit(queue, live)
                    if self.watchlist.changed.is_set():
                        self.watchlist.changed.clear()
                        await self._resubscribe(conn)
            finally:
                # Held live trades are dropped with an unfinished backfill: the next connection's
                # gap starts at the last published trade, so it fetches them again, in order.
                if backfill is not None:
                    backfill.cancel()

    def _quotes(self, items: list[dict[str, Any]]) -> list[Quote | TradeAmendment]:
        quotes: list[Quote | TradeAmendment] = []
        for item in items:
            try:
                quotes.extend(self.handle(item))
            except MalformedResponse as exc:
                log.warning("malformed stream message dropped", provider=self.provider, error=exc.message)
        return quotes

    async def _resubscribe(self, conn: StreamConnection) -> None:
        """Apply watch-list changes on the open socket: subscribe the new, unsubscribe the gone."""
        wanted = self.stream_targets()
        on_stream = set(self.streamed) | self._pending
        added = [s for s in wanted if s not in on_stream]
        removed = [s for s in self.streamed if s not in wanted]
        if removed:
            await self.unsubscribe(conn, removed)
        if added:
            self._pending.update(added)
            await self.subscribe(conn, added)

    async def _emit(self, queue: asyncio.Queue[Batch], quotes: Sequence[Quote | TradeAmendment]) -> None:
        batch: Batch = []
        for quote in quotes:
            message = quote if isinstance(quote, TradeAmendment) else self.builder.to_tick(quote)
            if message is not None:
                batch.append(message)
        if batch:
            await queue.put(batch)

    async def _fetch_gap(self, symbols: list[str], gap_start: int, gap_end: int) -> list[Quote]:
        quotes: list[Quote] = []
        end = datetime.fromtimestamp(gap_end / 1000, tz=UTC)
        for symbol in symbols:
            since = self.builder.last_ts(symbol) or gap_start
            start = datetime.fromtimestamp(since / 1000, tz=UTC)
            try:
                trades = await self.gap_trades(symbol, start, end)
            except ProviderError as exc:
                trades = None
                outcome = exc.outcome
            else:
                outcome = "no_history"
            if trades is None:
                GAP_BACKFILLS.labels(self.provider, "failed").inc()
                log.error(
                    "stream gap NOT backfilled",
                    provider=self.provider,
                    symbol=symbol,
                    gap_from=start.isoformat(),
                    gap_to=end.isoformat(),
                    outcome=outcome,
                )
                continue
            GAP_BACKFILLS.labels(self.provider, "filled").inc()
            log.info("stream gap backfilled", provider=self.provider, symbol=symbol, trades=len(trades))
            quotes.extend(trades)
        quotes.sort(key=lambda q: q.ts_ms)
        return quotes

    async def _poll_loop(self, stop: asyncio.Event, queue: asyncio.Queue[Batch]) -> None:
        """Poll what the stream does not carry; the first round waits so the stream can subscribe."""
        await sleep_or_stop(stop, min(self.poll_interval, self.handshake_timeout))
        while not stop.is_set():
            started = time.monotonic()
            symbols = self.polled_symbols()
            if symbols:
                try:
                    quotes = await self.poll(symbols)
                except ProviderError as exc:
                    log.warning(
                        "polling of unstreamed symbols failed",
                        provider=self.provider,
                        symbols=len(symbols),
                        outcome=exc.outcome,
                    )
                else:
                    quotes.sort(key=lambda q: q.ts_ms)
                    await self._emit(queue, quotes)
            await sleep_or_stop(stop, self.poll_interval - (time.monotonic() - started))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.close_rest()
