"""Finnhub's trade WebSocket against a loopback server speaking its documented messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest_asyncio
from aiohttp import WSMsgType, web
from pydantic import SecretStr

from fetcher.providers.finnhub_stream import FinnhubTradeStream
from fetcher.watchlist import WatchList
from stocktrack_common.messages import Tick
from tests.fetcher import clients
from tests.fetcher.conftest import fixture_text
from tests.support.waiting import wait_until_async


@dataclass
class FakeFinnhub:
    limit: int = 50
    connections: int = 0
    drop_first: bool = False
    subscribed: list[str] = field(default_factory=list)
    quote_calls: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def ws(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != clients.FINNHUB_KEY:
            raise web.HTTPUnauthorized(text="Invalid API key")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        number = self.connections
        await ws.send_str(fixture_text("finnhub/ws_ping.json"))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = orjson.loads(msg.data)
            self.received.append(data)
            if data.get("type") == "subscribe":
                if len(self.subscribed) >= self.limit:
                    await ws.send_str(fixture_text("finnhub/ws_error_too_many_symbols.json"))
                    continue
                self.subscribed.append(data["symbol"])
                if data["symbol"] == "AAPL":
                    await ws.send_str(fixture_text("finnhub/ws_trade.json"))
                    if number == 1 and self.drop_first:
                        await ws.close()
            elif data.get("type") == "unsubscribe":
                self.subscribed.remove(data["symbol"])
        return ws

    async def quote(self, request: web.Request) -> web.Response:
        self.quote_calls.append(request.query["symbol"])
        return web.Response(text=fixture_text("finnhub/quote.json"), content_type="application/json")


@pytest_asyncio.fixture
async def finnhub_server() -> AsyncIterator[FakeFinnhub]:
    server = FakeFinnhub()
    app = web.Application()
    app.router.add_get("/ws", server.ws)
    app.router.add_get("/quote", server.quote)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


def make_stream(
    server: FakeFinnhub, symbols: list[str], key: str = clients.FINNHUB_KEY, **kw: Any
) -> FinnhubTradeStream:
    return FinnhubTradeStream(
        server.url.replace("http", "ws") + "/ws",
        SecretStr(key),
        clients.finnhub(server.url),
        WatchList(symbols),
        poll_interval=0.1,
        backoff_base=0.02,
        backoff_cap=0.05,
        handshake_timeout=2.0,
        **kw,
    )


async def run_until(stream: FinnhubTradeStream, done: Callable[[list[Tick]], bool]) -> list[Tick]:
    stop = asyncio.Event()
    ticks: list[Tick] = []

    async def run() -> None:
        async for batch in stream.batches(stop):
            ticks.extend(batch)

    task = asyncio.create_task(run())

    def reached() -> bool:
        assert not task.done(), task.exception()
        return bool(done(ticks))

    try:
        await wait_until_async(reached, 10, "the stream's condition", interval=0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await stream.aclose()
    return ticks


async def test_trades_arrive_as_ticks_and_identical_trades_both_count(finnhub_server: FakeFinnhub) -> None:
    stream = make_stream(finnhub_server, ["AAPL"])
    ticks = await run_until(stream, lambda ticks: len(ticks) >= 3)
    assert [(t.ts, str(t.price), t.size) for t in ticks] == [
        (1715371200123, "261.74", 100),
        (1715371200456, "261.75", 15),
        (1715371200457, "261.75", 15),  # the second identical trade, kept and moved 1 ms on
    ]
    assert {t.source for t in ticks} == {"finnhub"}
    assert finnhub_server.received == [{"type": "subscribe", "symbol": "AAPL"}]


async def test_symbols_beyond_the_cap_are_polled(finnhub_server: FakeFinnhub) -> None:
    stream = make_stream(finnhub_server, ["AAPL", "MSFT", "IBM"], max_symbols=2)
    await run_until(stream, lambda _: finnhub_server.quote_calls.count("IBM") >= 2)
    assert finnhub_server.subscribed == ["AAPL", "MSFT"]
    assert set(finnhub_server.quote_calls) == {"IBM"}
    assert finnhub_server.connections == 1


async def test_too_many_symbols_error_moves_the_refused_to_polling(finnhub_server: FakeFinnhub) -> None:
    finnhub_server.limit = 1
    stream = make_stream(finnhub_server, ["AAPL", "MSFT"])
    await run_until(stream, lambda _: "MSFT" in finnhub_server.quote_calls and stream.cap < 50)
    assert finnhub_server.connections == 1  # an error frame is not a reason to reconnect


async def test_rejected_key_stops_the_stream_and_polls(finnhub_server: FakeFinnhub) -> None:
    stream = make_stream(finnhub_server, ["AAPL"], key="wrong")
    ticks = await run_until(stream, lambda ticks: len(ticks) >= 1)
    assert finnhub_server.connections == 0
    assert stream.disabled_reason is not None and "FINNHUB_API_KEY" in stream.disabled_reason
    assert finnhub_server.quote_calls and ticks[0].source == "finnhub"


async def test_a_drop_reconnects_and_reports_the_unfillable_gap(finnhub_server: FakeFinnhub) -> None:
    finnhub_server.drop_first = True
    stream = make_stream(finnhub_server, ["AAPL"])
    await run_until(stream, lambda _: finnhub_server.connections >= 2 and stream.streamed == ["AAPL"])
    assert finnhub_server.received.count({"type": "subscribe", "symbol": "AAPL"}) == 2
