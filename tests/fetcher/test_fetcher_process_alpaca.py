"""The fetcher process (`PROVIDER=alpaca-stream`) against a loopback Alpaca serving each stream answer.

The stand-in enforces the plan's symbol limit the way Alpaca documents it (405, subscriptions
unchanged) and can refuse authentication with 402 or 409, and streams trade corrections and
cancels, which the writer process applies to the stored ticks and bars.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import psycopg
import redis
from aiohttp import web

from stocktrack_common.stream_names import amendments_stream, dead_stream, tick_streams
from tests.fetcher import clients
from tests.fetcher.standin import serve
from tests.fetcher.test_alpaca_stream import ALPACA_402, ALPACA_409, FakeAlpaca, cancel, correction, trade
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

SHARDS = 2
SYMBOLS_31 = [f"S{n:02d}" for n in range(31)]


def _alpaca(**attrs: Any) -> tuple[FakeAlpaca, web.Application]:
    attrs.setdefault("live", [[trade("S00", 1, 1.0, 50.0, 10)]])
    server = FakeAlpaca(history={}, drop_first=False, **attrs)
    app = web.Application()
    app.router.add_get("/stream", server.ws)
    app.router.add_get("/v2/stocks/{symbol}/trades", server.trades)
    app.router.add_get("/v2/stocks/snapshots", server.snapshots)
    return server, app


def _fetcher(services: Services, url: str, symbols: list[str], **env: str) -> ServiceProcess:
    return services.start(
        "fetcher",
        PROVIDER="alpaca-stream",
        SYMBOLS=",".join(symbols),
        TICK_SHARDS=str(SHARDS),
        WATCHLIST_FROM_DB="false",
        POLL_INTERVAL_SECONDS="0.2",
        BACKOFF_BASE_SECONDS="0.05",
        BACKOFF_MAX_SECONDS="0.2",
        ALPACA_API_KEY_ID=clients.ALPACA_KEY_ID,
        ALPACA_API_SECRET_KEY=clients.ALPACA_SECRET,
        ALPACA_DATA_URL=url,
        ALPACA_STREAM_URL=url.replace("http", "ws") + "/stream",
        **env,
    )


def _symbols_published(redis_url: str, prefix: str) -> set[str]:
    with redis.Redis.from_url(redis_url) as client:
        return {
            fields[b"symbol"].decode()
            for stream in tick_streams(prefix, SHARDS)
            for _, fields in client.xrange(stream)
        }


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_31_symbols_stream_30_and_poll_one_without_a_reconnect_storm(
    services: Services, redis_url: str, prefix: str
) -> None:
    server, app = _alpaca()
    with serve(app) as url:
        fetcher = _fetcher(services, url, SYMBOLS_31)
        wait_until(lambda: len(server.snapshot_calls) >= 5, 30, "five polls of the overflow")
        wait_until(
            lambda: {"S00", "S30"} <= _symbols_published(redis_url, prefix), 10, "streamed and polled ticks"
        )
        assert server.connections == 1
        assert server.subscribed == SYMBOLS_31[:30]
        assert {tuple(call) for call in server.snapshot_calls} == {("S30",)}
        assert fetcher.proc is not None and fetcher.proc.poll() is None
        assert fetcher.terminate() == 0  # before the stand-in goes: it would wait for the socket


def test_symbol_limit_below_the_setting_is_found_on_one_socket(
    services: Services, redis_url: str, prefix: str
) -> None:
    server, app = _alpaca(limit=20)  # the plan allows fewer than ALPACA_STREAM_MAX_SYMBOLS
    with serve(app) as url:
        fetcher = _fetcher(services, url, SYMBOLS_31, ALPACA_STREAM_MAX_SYMBOLS="31")
        wait_until(lambda: len(server.snapshot_calls) >= 3, 30, "polls of the refused symbols")
        assert server.connections == 1  # 405 leaves the socket and its subscriptions alone
        streamed = set(server.subscribed)
        assert streamed and streamed | set(server.snapshot_calls[-1]) == set(SYMBOLS_31)
        assert fetcher.terminate() == 0


def _fatal(services: Services, redis_url: str, prefix: str, error: dict[str, Any], setting: str) -> None:
    server, app = _alpaca(auth_error=error)
    with serve(app) as url:
        fetcher = _fetcher(services, url, ["AAPL", "MSFT"])
        fetcher.wait_healthy()
        wait_until(lambda: _symbols_published(redis_url, prefix) == {"AAPL", "MSFT"}, 30, "polled ticks")
        status, body = _readyz(fetcher.port)
        assert server.connections == 1  # never retried
        assert fetcher.terminate() == 0
    assert status == 503 and setting in body["checks"]["stream"]
    assert "stream unavailable; polling every symbol instead" in fetcher.output()


def test_auth_failed_402_falls_back_to_polling(services: Services, redis_url: str, prefix: str) -> None:
    _fatal(services, redis_url, prefix, ALPACA_402, "ALPACA_API_KEY_ID")


def test_insufficient_subscription_409_falls_back_to_polling(
    services: Services, redis_url: str, prefix: str
) -> None:
    _fatal(services, redis_url, prefix, ALPACA_409, "ALPACA_STREAM_URL")


def test_a_correction_and_a_cancel_change_the_stored_ticks_and_their_bar(
    services: Services, redis_url: str, prefix: str, db_url: str
) -> None:
    minute = [
        trade("AAPL", 1, 1.0, 183.00, 100),
        trade("AAPL", 2, 2.0, 183.50, 50),
        trade("AAPL", 3, 3.0, 183.20, 10),
        correction("AAPL", 2, 12, 183.05, 40),
        cancel("AAPL", 3),
    ]
    _, app = _alpaca(live=[minute])
    writer = services.start("writer", TICK_SHARDS=str(SHARDS))
    writer.wait_healthy()
    with serve(app) as url:
        fetcher = _fetcher(services, url, ["AAPL"])
        with psycopg.connect(db_url, autocommit=True) as conn:

            def stored() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
                ticks = conn.execute("SELECT price::text, size, trade_id FROM ticks ORDER BY ts").fetchall()
                bars = conn.execute(
                    "SELECT open::text, high::text, low::text, close::text, volume, trades FROM bars_1m"
                ).fetchall()
                return ticks, bars

            # The cancelled trade is gone and the corrected one carries its new price, size and
            # id; the bar is rebuilt from those two (high 183.05, not the corrected-away 183.50).
            want = (
                [("183.0", 100, "V:1"), ("183.05", 40, "V:12")],
                [("183.0", "183.05", "183.0", "183.05", 140, 2)],
            )
            wait_until(lambda: stored() == want, 30, "the amended ticks and bar")
        assert fetcher.terminate() == 0

    # A malformed amendment on the stream is dead-lettered with its reason; the writer goes on.
    with redis.Redis.from_url(redis_url) as client:
        client.xadd(
            amendments_stream(prefix),
            {"v": "1", "kind": "correction", "symbol": "AAPL", "ts": "1", "price": "1", "size": "1",
             "source": "alpaca", "trade": "V:1"},
        )  # fmt: skip

        def dead_reasons() -> list[str]:
            return [f[b"error"].decode() for _, f in client.xrange(dead_stream(prefix))]

        wait_until(lambda: bool(dead_reasons()), 20, "the dead letter")
        assert "corrected_trade is required for a correction" in dead_reasons()[0]
    assert writer.proc is not None and writer.proc.poll() is None
