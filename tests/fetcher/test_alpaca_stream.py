"""Alpaca's trade stream against a loopback WebSocket + REST server.

The server drops the connection after a few trades; trades made during the outage exist only
in REST history. The client must reconnect, authenticate and resubscribe, fetch the gap over
REST, and publish every trade exactly once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest_asyncio
from aiohttp import WSMsgType, web
from pydantic import SecretStr

from fetcher.providers.alpaca_stream import AlpacaTradeStream
from fetcher.watchlist import WatchList
from stocktrack_common.messages import Tick
from tests.fetcher import clients
from tests.fetcher.conftest import metric


def trade(symbol: str, trade_id: int, second: float, price: float, size: int) -> dict[str, Any]:
    whole = int(second)
    micros = round((second - whole) * 1_000_000)
    return {
        "T": "t",
        "S": symbol,
        "i": trade_id,
        "x": "V",
        "p": price,
        "s": size,
        "t": f"2024-05-10T15:31:{whole:02d}.{micros:06d}Z",
        "c": ["@"],
        "z": "C",
    }


@dataclass
class FakeAlpaca:
    """Connection n (0-based) gets `live[n]` after subscribing; connection 0 is then dropped."""

    live: list[list[dict[str, Any]]]
    history: dict[str, list[dict[str, Any]]]
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    rest_calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        number = self.connections
        self.connections += 1
        await ws.send_str(orjson.dumps([{"T": "success", "msg": "connected"}]).decode())
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = orjson.loads(msg.data)
            self.received.append(data)
            if data.get("action") == "auth":
                ok = data.get("key") == clients.ALPACA_KEY_ID and data.get("secret") == clients.ALPACA_SECRET
                reply = (
                    {"T": "success", "msg": "authenticated"}
                    if ok
                    else {"T": "error", "code": 402, "msg": "auth failed"}
                )
                await ws.send_str(orjson.dumps([reply]).decode())
            elif data.get("action") == "subscribe":
                await ws.send_str(orjson.dumps([{"T": "subscription", "trades": data["trades"]}]).decode())
                batch = self.live[number] if number < len(self.live) else []
                if batch:
                    await ws.send_str(orjson.dumps(batch).decode())
                if number == 0:
                    await asyncio.sleep(0.05)
                    await ws.close()
        return ws

    async def trades(self, request: web.Request) -> web.Response:
        self.rest_calls.append(dict(request.query))
        symbol = request.match_info["symbol"]
        rows = [{k: v for k, v in t.items() if k not in ("T", "S")} for t in self.history.get(symbol, [])]
        return web.json_response({"trades": rows, "symbol": symbol, "next_page_token": None})


@pytest_asyncio.fixture
async def alpaca_server() -> AsyncIterator[FakeAlpaca]:
    before = [trade("AAPL", 1, 1.0, 183.00, 100), trade("AAPL", 2, 2.0, 183.10, 50)]
    gap = [trade("AAPL", 3, 3.0, 183.20, 10), trade("AAPL", 4, 4.0, 183.15, 20)]
    after = [trade("AAPL", 4, 4.0, 183.15, 20), trade("AAPL", 5, 9.0, 183.30, 5)]
    server = FakeAlpaca(live=[before, after], history={"AAPL": before[1:] + gap})
    app = web.Application()
    app.router.add_get("/stream", server.ws)
    app.router.add_get("/v2/stocks/{symbol}/trades", server.trades)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


async def test_reconnect_resubscribes_and_backfills_the_gap(alpaca_server: FakeAlpaca) -> None:
    stream = AlpacaTradeStream(
        alpaca_server.url.replace("http", "ws") + "/stream",
        SecretStr(clients.ALPACA_KEY_ID),
        SecretStr(clients.ALPACA_SECRET),
        clients.alpaca(alpaca_server.url),
        WatchList(["AAPL"]),
        backoff_base=0.05,
        backoff_cap=0.1,
    )
    reconnects = metric("stocktrack_fetcher_stream_reconnects_total", provider="alpaca")
    filled = metric("stocktrack_fetcher_gap_backfills_total", provider="alpaca", outcome="filled")
    stop = asyncio.Event()
    ticks: list[Tick] = []

    async def run() -> None:
        async for batch in stream.batches(stop):
            ticks.extend(batch)
            if len(ticks) >= 5:
                stop.set()

    await asyncio.wait_for(run(), 10)
    await stream.aclose()

    assert [(str(t.price), t.size) for t in ticks] == [
        ("183.0", 100),
        ("183.1", 50),
        ("183.2", 10),
        ("183.15", 20),
        ("183.3", 5),
    ]
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
    assert {t.source for t in ticks} == {"alpaca"}
    assert alpaca_server.connections == 2
    actions = [m["action"] for m in alpaca_server.received]
    assert actions == ["auth", "subscribe", "auth", "subscribe"]
    assert alpaca_server.rest_calls[0]["start"].startswith("2024-05-10T15:31:02")  # from the last trade seen
    assert metric("stocktrack_fetcher_stream_reconnects_total", provider="alpaca") - reconnects == 1
    assert metric("stocktrack_fetcher_gap_backfills_total", provider="alpaca", outcome="filled") - filled == 1


async def test_rejected_auth_is_retried_with_backoff_not_fatal(alpaca_server: FakeAlpaca) -> None:
    stream = AlpacaTradeStream(
        alpaca_server.url.replace("http", "ws") + "/stream",
        SecretStr("wrong"),
        SecretStr("wrong"),
        clients.alpaca(alpaca_server.url),
        WatchList(["AAPL"]),
        backoff_base=0.02,
        backoff_cap=0.05,
    )
    stop = asyncio.Event()
    ticks: list[Tick] = []

    async def run() -> None:
        async for batch in stream.batches(stop):
            ticks.extend(batch)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.6)
    stop.set()
    await asyncio.wait_for(task, 5)
    await stream.aclose()
    assert ticks == []
    assert alpaca_server.connections >= 3  # kept trying
    assert all(m["action"] == "auth" for m in alpaca_server.received)  # never subscribed unauthenticated
