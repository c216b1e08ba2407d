"""Alpaca's trade stream against a loopback WebSocket + REST server.

The server drops the connection after a few trades; trades made during the outage exist only
in REST history. The client must reconnect, authenticate and resubscribe, fetch the gap over
REST, and publish every trade exactly once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import pytest_asyncio
from aiohttp import WSMsgType, web
from pydantic import SecretStr

from fetcher.providers.alpaca_stream import AlpacaTradeStream
from fetcher.watchlist import WatchList
from stocktrack_common.messages import Tick, TradeAmendment
from tests.fetcher import clients
from tests.fetcher.conftest import fixture_text, metric
from tests.support.waiting import wait_until_async

# https://docs.alpaca.markets/docs/real-time-stock-pricing-data (verbatim; see SOURCES.md).
ALPACA_405 = {"T": "error", "code": 405, "msg": "symbol limit exceeded"}
ALPACA_402 = {"T": "error", "code": 402, "msg": "auth failed"}
ALPACA_409 = {"T": "error", "code": 409, "msg": "insufficient subscription"}


def subscription(trades: list[str]) -> dict[str, Any]:
    """The documented confirmation: the full current subscription, every channel listed."""
    return {
        "T": "subscription",
        "trades": trades,
        "quotes": [],
        "bars": [],
        "updatedBars": [],
        "dailyBars": [],
        "statuses": [],
        "lulds": [],
        "corrections": trades,
        "cancelErrors": trades,
    }


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
    """Connection n (0-based) gets `live[n]` after subscribing; connection 0 is then dropped.

    Like the real server it enforces the plan's symbol limit (405, subscriptions unchanged),
    answers every (un)subscribe with the full subscription, and may refuse auth (402, 409).
    """

    live: list[list[dict[str, Any]]]
    history: dict[str, list[dict[str, Any]]]
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    rest_calls: list[dict[str, str]] = field(default_factory=list)
    snapshot_calls: list[list[str]] = field(default_factory=list)
    url: str = ""
    limit: int = 30
    auth_error: dict[str, Any] | None = None
    drop_first: bool = True
    subscribed: list[str] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        number = self.connections
        self.connections += 1
        await ws.send_str(orjson.dumps([{"T": "success", "msg": "connected"}]).decode())
        self.sockets.append(ws)
        subscribed: list[str] = []
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
                await ws.send_str(orjson.dumps([self.auth_error or reply]).decode())
            elif data.get("action") == "subscribe":
                wanted = subscribed + [s for s in data["trades"] if s not in subscribed]
                if len(wanted) > self.limit:
                    # Documented: "your symbol subscriptions are the same as they were before".
                    await ws.send_str(orjson.dumps([ALPACA_405]).decode())
                    continue
                subscribed[:] = wanted
                self.subscribed = list(subscribed)
                await ws.send_str(orjson.dumps([subscription(subscribed)]).decode())
                batch = self.live[number] if number < len(self.live) else []
                if batch and len(self.received) <= 4 * (number + 1):
                    await ws.send_str(orjson.dumps(batch).decode())
                if number == 0 and self.drop_first:
                    await asyncio.sleep(0.05)
                    await ws.close()
            elif data.get("action") == "unsubscribe":
                subscribed[:] = [s for s in subscribed if s not in data["trades"]]
                self.subscribed = list(subscribed)
                await ws.send_str(orjson.dumps([subscription(subscribed)]).decode())
        return ws

    async def snapshots(self, request: web.Request) -> web.Response:
        symbols = request.query["symbols"].split(",")
        self.snapshot_calls.append(symbols)
        body = orjson.loads(fixture_text("alpaca/snapshots.json"))
        template = body["AAPL"]
        answer = {}
        for n, symbol in enumerate(symbols):
            snap = orjson.loads(orjson.dumps(template))
            snap["latestTrade"]["i"] = 1000 + n
            answer[symbol] = snap
        return web.json_response(answer)

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
    app.router.add_get("/v2/stocks/snapshots", server.snapshots)
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
    assert [t.trade for t in ticks] == ["V:1", "V:2", "V:3", "V:4", "V:5"]  # gap trades too, from REST
    assert alpaca_server.connections == 2
    actions = [m["action"] for m in alpaca_server.received]
    assert actions == ["auth", "subscribe", "auth", "subscribe"]
    assert alpaca_server.rest_calls[0]["start"].startswith("2024-05-10T15:31:02")  # from the last trade seen
    assert metric("stocktrack_fetcher_stream_reconnects_total", provider="alpaca") - reconnects == 1
    assert metric("stocktrack_fetcher_gap_backfills_total", provider="alpaca", outcome="filled") - filled == 1


def make_stream(server: FakeAlpaca, symbols: list[str], **kwargs: Any) -> AlpacaTradeStream:
    return AlpacaTradeStream(
        server.url.replace("http", "ws") + "/stream",
        SecretStr(kwargs.pop("key", clients.ALPACA_KEY_ID)),
        SecretStr(kwargs.pop("secret", clients.ALPACA_SECRET)),
        clients.alpaca(server.url),
        WatchList(symbols),
        backoff_base=0.02,
        backoff_cap=0.05,
        poll_interval=0.1,
        handshake_timeout=2.0,
        **kwargs,
    )


async def run_until(
    stream: AlpacaTradeStream, done: Any, timeout: float = 10.0
) -> list[Tick | TradeAmendment]:
    stop = asyncio.Event()
    ticks: list[Tick | TradeAmendment] = []

    async def run() -> None:
        async for batch in stream.batches(stop):
            ticks.extend(batch)

    task = asyncio.create_task(run())

    def reached() -> bool:
        assert not task.done(), task.exception()
        return bool(done(ticks))

    try:
        await wait_until_async(reached, timeout, "the stream's condition", interval=0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await stream.aclose()
    return ticks


SYMBOLS_31 = [f"S{n:02d}" for n in range(31)]


async def test_31_symbols_stream_30_and_poll_the_rest_without_reconnecting(alpaca_server: FakeAlpaca) -> None:
    alpaca_server.drop_first = False
    stream = make_stream(alpaca_server, SYMBOLS_31)
    ticks = await run_until(stream, lambda _: len(alpaca_server.snapshot_calls) >= 3)
    assert alpaca_server.connections == 1  # no reconnect storm
    assert alpaca_server.subscribed == SYMBOLS_31[:30]
    assert all(call == ["S30"] for call in alpaca_server.snapshot_calls)  # only the overflow is polled
    assert any(t.symbol == "S30" for t in ticks)


async def test_symbol_limit_405_keeps_the_stream_and_polls_the_refused(alpaca_server: FakeAlpaca) -> None:
    # The plan allows fewer symbols than configured; adding one through the API must not kill
    # the stream: the server refuses the subscribe and keeps the previous subscriptions.
    alpaca_server.drop_first = False
    alpaca_server.limit = 3
    table = ["A", "B", "C"]

    async def load() -> list[str]:
        return list(table)

    stream = make_stream(alpaca_server, [])
    stream.watchlist = WatchList([], load, reload_seconds=0.05)
    added = False

    def done(_: list[Tick]) -> bool:
        nonlocal added
        if not added and stream.streamed == ["A", "B", "C"]:
            table.append("D")
            added = True
        polled_d = bool(alpaca_server.snapshot_calls) and alpaca_server.snapshot_calls[-1] == ["D"]
        return added and polled_d and stream.streamed == ["A", "B", "C"]

    await run_until(stream, done)
    subscribes = [m.get("trades") for m in alpaca_server.received if m.get("action") == "subscribe"]
    assert subscribes == [["A", "B", "C"], ["D"]]  # a diff on the open socket, not a resubscribe
    assert alpaca_server.connections == 1  # the 405 dropped nothing
    assert stream.cap == 3


async def test_auth_failed_402_stops_the_stream_and_polls_everything(alpaca_server: FakeAlpaca) -> None:
    stream = make_stream(alpaca_server, ["AAPL", "MSFT"], key="wrong", secret="wrong")
    ticks = await run_until(stream, lambda ticks: {t.symbol for t in ticks} == {"AAPL", "MSFT"})
    assert alpaca_server.connections == 1  # never retried: no reconnect can mend a rejected key
    assert all(m["action"] == "auth" for m in alpaca_server.received)
    assert stream.disabled_reason is not None and "ALPACA_API_KEY_ID" in stream.disabled_reason
    assert sorted(alpaca_server.snapshot_calls[0]) == ["AAPL", "MSFT"]
    assert {t.source for t in ticks} == {"alpaca"}


async def test_insufficient_subscription_409_stops_the_stream_and_polls_everything(
    alpaca_server: FakeAlpaca,
) -> None:
    alpaca_server.auth_error = ALPACA_409
    stream = make_stream(alpaca_server, ["AAPL"])
    checks = stream.readiness_checks()
    await run_until(stream, lambda ticks: len(ticks) >= 1)
    assert alpaca_server.connections == 1
    assert stream.disabled_reason is not None and "ALPACA_STREAM_URL" in stream.disabled_reason
    try:
        await checks["stream"]()
    except RuntimeError as exc:
        assert "409" in str(exc)
    else:
        raise AssertionError("readiness must report the stopped stream")


# Shapes as alpaca-py maps them (alpaca/data/mappings.py, TRADE_CORRECTION_MAPPING and
# TRADE_CANCEL_MAPPING): a correction names the original trade (oi, op, os, oc) and the corrected
# one (ci, cp, cs, cc); a cancel or error names the trade (i) with action a = "C" or "E".
def correction(symbol: str, original: int, corrected: int, price: float, size: int) -> dict[str, Any]:
    return {
        "T": "c", "S": symbol, "x": "V", "oi": original, "op": 183.0, "os": 100, "oc": ["@"],
        "ci": corrected, "cp": price, "cs": size, "cc": ["@"], "z": "C", "t": "2024-05-10T15:31:05Z",
    }  # fmt: skip


def cancel(symbol: str, trade_id: int, action: str = "C") -> dict[str, Any]:
    return {
        "T": "x", "S": symbol, "x": "V", "i": trade_id, "p": 183.1, "s": 50, "a": action, "z": "C",
        "t": "2024-05-10T15:31:06Z",
    }  # fmt: skip


async def test_corrections_and_cancels_travel_in_order_with_the_trades_they_amend(
    alpaca_server: FakeAlpaca,
) -> None:
    malformed = {**correction("AAPL", 2, 12, 183.0, 1), "ci": None}
    alpaca_server.drop_first = False
    alpaca_server.live = [
        [
            trade("AAPL", 1, 1.0, 183.00, 100),
            correction("AAPL", 1, 11, 183.01, 90),
            malformed,
            trade("AAPL", 2, 2.0, 183.10, 50),
            cancel("AAPL", 2, "E"),
        ]
    ]
    cancels = metric("stocktrack_fetcher_trade_amendments_total", provider="alpaca", kind="cancel")
    stream = make_stream(alpaca_server, ["AAPL"])
    out = await run_until(stream, lambda got: len(got) >= 4)
    assert out == [
        Tick(symbol="AAPL", ts=out[0].ts, price=Decimal("183.0"), size=100, source="alpaca", trade="V:1"),
        TradeAmendment(
            kind="correction", symbol="AAPL", ts=1715355065000, price=Decimal("183.01"), size=90,
            source="alpaca", trade="V:1", corrected_trade="V:11",
        ),
        Tick(symbol="AAPL", ts=out[2].ts, price=Decimal("183.1"), size=50, source="alpaca", trade="V:2"),
        TradeAmendment(
            kind="cancel", symbol="AAPL", ts=1715355066000, price=Decimal("183.1"), size=50,
            source="alpaca", trade="V:2",
        ),
    ]  # fmt: skip
    assert (
        metric("stocktrack_fetcher_trade_amendments_total", provider="alpaca", kind="cancel") == cancels + 1
    )
