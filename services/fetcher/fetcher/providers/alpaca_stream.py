"""Alpaca's trade WebSocket: one connection per key, reconnect with backoff, gap backfill over REST.

Alpaca allows one market-data connection per account and feed, so every watched symbol shares
this one socket. The protocol: the server greets with `success/connected`; the client sends
`auth` and then `subscribe` with the trade symbols; trades arrive as `{"T": "t", ...}` arrays.

After a drop the client reconnects (exponential backoff with jitter), authenticates,
resubscribes, and fetches the trades of the gap over REST: per symbol from its last
published trade (or the moment of the drop) to the moment of resubscription. Live trades
that arrive meanwhile are held back so the gap trades go out first and order per symbol
holds; trade ids remove the overlap. A gap that cannot be fetched is logged with its window
and counted, never skipped silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog
from pydantic import SecretStr

from fetcher.provider_metrics import GAP_BACKFILLS, STREAM_RECONNECTS, observe_quote_lag
from fetcher.providers.alpaca import AlpacaClient, trade_to_quote
from fetcher.providers.errors import MalformedResponse, ProviderError
from fetcher.quotes import Quote
from fetcher.tick_builder import TickBuilder
from fetcher.watchlist import WatchList
from stocktrack_common.backoff import backoff_delay
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import Tick

log = structlog.get_logger(__name__)

NAME = "alpaca"
SOURCE_NAME = "alpaca-stream"


class StreamRejected(Exception):
    """The server answered with an error message (bad auth, connection limit, ...)."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(f"stream error {code}: {message}")
        self.code = code


class StreamClosed(Exception):
    pass


def _now_ms() -> int:
    return int(time.time() * 1000)


class AlpacaTradeStream:
    name = SOURCE_NAME

    def __init__(
        self,
        url: str,
        key_id: SecretStr,
        secret_key: SecretStr,
        rest: AlpacaClient,
        watchlist: WatchList,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        heartbeat_seconds: float = 30.0,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._key_id = key_id
        self._secret = secret_key
        self.rest = rest
        self.watchlist = watchlist
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.heartbeat = heartbeat_seconds
        self.handshake_timeout = handshake_timeout
        self.builder = TickBuilder()
        self.connections = 0
        self._session: aiohttp.ClientSession | None = None
        self._healthy_session = False
        self._gap_start: int | None = None

    async def batches(self, stop: asyncio.Event) -> AsyncIterator[list[Tick]]:
        queue: asyncio.Queue[list[Tick]] = asyncio.Queue()
        await self.watchlist.refresh()
        self.watchlist.changed.clear()
        runner = asyncio.create_task(self._run(stop, queue))
        reloader = asyncio.create_task(self.watchlist.run(stop))
        try:
            while not stop.is_set():
                try:
                    batch = await asyncio.wait_for(queue.get(), timeout=0.5)
                except TimeoutError:
                    if runner.done():
                        runner.result()
                        return
                    continue
                observe_quote_lag(batch, time.time())
                yield batch
        finally:
            for task in (runner, reloader):
                task.cancel()
            await asyncio.gather(runner, reloader, return_exceptions=True)

    async def _run(self, stop: asyncio.Event, queue: asyncio.Queue[list[Tick]]) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._connect_once(stop, queue)
                reason = "closed by server"
            except StreamRejected as exc:
                reason = f"rejected ({exc.code})"
            except (aiohttp.ClientError, TimeoutError, StreamClosed, MalformedResponse) as exc:
                reason = type(exc).__name__
            if stop.is_set():
                return
            if self._gap_start is None:
                self._gap_start = _now_ms()
            if self._healthy_session:
                attempt = 0
            delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
            attempt += 1
            STREAM_RECONNECTS.labels(NAME).inc()
            log.warning(
                "trade stream dropped; reconnecting", provider=NAME, reason=reason, delay_s=round(delay, 3)
            )
            await sleep_or_stop(stop, delay)

    def _session_client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, timeout: float
    ) -> list[dict[str, Any]] | None:
        """Next message as a list of objects; None on timeout; StreamClosed when the socket ends."""
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return None
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise StreamClosed()
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise StreamClosed()
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return []
        try:
            data = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            log.warning("unparseable stream message dropped", provider=NAME)
            return []
        items = data if isinstance(data, list) else [data]
        return [item for item in items if isinstance(item, dict)]

    async def _expect(
        self, ws: aiohttp.ClientWebSocketResponse, kind: str, msg: str | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.handshake_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            items = await self._receive(ws, remaining)
            for item in items or []:
                if item.get("T") == "error":
                    raise StreamRejected(item.get("code"), str(item.get("msg", "")))
                if item.get("T") == kind and (msg is None or item.get("msg") == msg):
                    return item

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
        await ws.send_str(orjson.dumps(message).decode())

    async def _connect_once(self, stop: asyncio.Event, queue: asyncio.Queue[list[Tick]]) -> None:
        self._healthy_session = False
        async with self._session_client().ws_connect(self.url, heartbeat=self.heartbeat) as ws:
            await self._expect(ws, "success", "connected")
            await self._send(
                ws,
                {
                    "action": "auth",
                    "key": self._key_id.get_secret_value(),
                    "secret": self._secret.get_secret_value(),
                },
            )
            await self._expect(ws, "success", "authenticated")
            subscribed = list(self.watchlist.symbols)
            await self._send(ws, {"action": "subscribe", "trades": subscribed})
            await self._expect(ws, "subscription")
            resubscribed_at = _now_ms()
            self.connections += 1
            self._healthy_session = True
            log.info(
                "trade stream subscribed", provider=NAME, symbols=len(subscribed), connection=self.connections
            )
            backfill: asyncio.Task[list[Quote]] | None = None
            held: list[Quote] = []
            if self._gap_start is not None:
                backfill = asyncio.create_task(self._fetch_gap(subscribed, self._gap_start, resubscribed_at))
            try:
                while not stop.is_set():
                    items = await self._receive(ws, 0.5)
                    live = self._trades(items or [])
                    if backfill is not None:
                        held.extend(live)
                        if backfill.done():
                            await self._emit(queue, backfill.result() + held)
                            backfill, held = None, []
                            self._gap_start = None
                    elif live:
                        await self._emit(queue, live)
                    if self.watchlist.changed.is_set():
                        self.watchlist.changed.clear()
                        subscribed = await self._resubscribe(ws, subscribed)
            finally:
                # Held live trades are dropped with an unfinished backfill: the next connection's
                # gap starts at the last published trade, so it fetches them again, in order.
                if backfill is not None:
                    backfill.cancel()

    def _trades(self, items: list[dict[str, Any]]) -> list[Quote]:
        quotes = []
        for item in items:
            kind = item.get("T")
            if kind == "error":
                raise StreamRejected(item.get("code"), str(item.get("msg", "")))
            if kind != "t":
                continue
            symbol = item.get("S")
            if not isinstance(symbol, str):
                continue
            try:
                quotes.append(trade_to_quote(symbol, item))
            except MalformedResponse as exc:
                log.warning("malformed trade dropped", provider=NAME, symbol=symbol, error=exc.message)
        return quotes

    async def _emit(self, queue: asyncio.Queue[list[Tick]], quotes: list[Quote]) -> None:
        ticks = [tick for tick in (self.builder.to_tick(q) for q in quotes) if tick is not None]
        if ticks:
            await queue.put(ticks)

    async def _fetch_gap(self, symbols: list[str], gap_start: int, gap_end: int) -> list[Quote]:
        quotes: list[Quote] = []
        end = datetime.fromtimestamp(gap_end / 1000, tz=UTC)
        for symbol in symbols:
            since = self.builder.last_ts(symbol) or gap_start
            start = datetime.fromtimestamp(since / 1000, tz=UTC)
            try:
                trades = await self.rest.trades(symbol, start, end)
            except ProviderError as exc:
                GAP_BACKFILLS.labels(NAME, "failed").inc()
                log.error(
                    "stream gap NOT backfilled",
                    provider=NAME,
                    symbol=symbol,
                    gap_from=start.isoformat(),
                    gap_to=end.isoformat(),
                    outcome=exc.outcome,
                )
                continue
            GAP_BACKFILLS.labels(NAME, "filled").inc()
            log.info("stream gap backfilled", provider=NAME, symbol=symbol, trades=len(trades))
            quotes.extend(trades)
        quotes.sort(key=lambda q: q.ts_ms)
        return quotes

    async def _resubscribe(self, ws: aiohttp.ClientWebSocketResponse, subscribed: list[str]) -> list[str]:
        wanted = list(self.watchlist.symbols)
        added = [s for s in wanted if s not in subscribed]
        removed = [s for s in subscribed if s not in wanted]
        if added:
            await self._send(ws, {"action": "subscribe", "trades": added})
        if removed:
            await self._send(ws, {"action": "unsubscribe", "trades": removed})
        return wanted

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.rest.aclose()
