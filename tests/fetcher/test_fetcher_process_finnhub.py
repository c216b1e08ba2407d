"""The fetcher process (`PROVIDER=finnhub-stream`) against a loopback Finnhub: trades, ping, limit, bad key."""

from __future__ import annotations

import redis
from aiohttp import web

from stocktrack_common.stream_names import tick_streams
from tests.fetcher import clients
from tests.fetcher.standin import serve
from tests.fetcher.test_finnhub_stream import FakeFinnhub
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

SHARDS = 2


def _finnhub(**attrs: object) -> tuple[FakeFinnhub, web.Application]:
    server = FakeFinnhub(**attrs)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_get("/ws", server.ws)
    app.router.add_get("/quote", server.quote)
    return server, app


def _fetcher(services: Services, url: str, key: str = clients.FINNHUB_KEY) -> ServiceProcess:
    return services.start(
        "fetcher",
        PROVIDER="finnhub-stream",
        SYMBOLS="AAPL,MSFT,IBM",
        TICK_SHARDS=str(SHARDS),
        WATCHLIST_FROM_DB="false",
        POLL_INTERVAL_SECONDS="0.2",
        BACKOFF_BASE_SECONDS="0.05",
        BACKOFF_MAX_SECONDS="0.2",
        FINNHUB_API_KEY=key,
        FINNHUB_BASE_URL=url,
        FINNHUB_STREAM_URL=url.replace("http", "ws") + "/ws",
    )


def _published(redis_url: str, prefix: str) -> list[tuple[str, str]]:
    with redis.Redis.from_url(redis_url) as client:
        return [
            (fields[b"symbol"].decode(), fields[b"source"].decode())
            for stream in tick_streams(prefix, SHARDS)
            for _, fields in client.xrange(stream)
        ]


def test_trades_stream_and_the_refused_symbol_is_polled(
    services: Services, redis_url: str, prefix: str
) -> None:
    server, app = _finnhub(limit=2)
    with serve(app) as url:
        fetcher = _fetcher(services, url)
        wait_until(lambda: server.quote_calls.count("IBM") >= 3, 30, "polls of the symbol over the limit")
        wait_until(
            lambda: len([p for p in _published(redis_url, prefix) if p[0] == "AAPL"]) >= 3, 10, "trades"
        )
        assert server.connections == 1 and server.subscribed == ["AAPL", "MSFT"]
        assert set(server.quote_calls) == {"IBM"}
        assert fetcher.terminate() == 0


def test_rejected_key_falls_back_to_polling(services: Services, redis_url: str, prefix: str) -> None:
    server, app = _finnhub()
    with serve(app) as url:
        fetcher = _fetcher(services, url, key="wrong-key")
        wait_until(lambda: {"AAPL", "MSFT", "IBM"} <= set(server.quote_calls), 30, "every symbol polled")
        assert server.connections == 0
        assert fetcher.terminate() == 0
    assert "FINNHUB_API_KEY" in fetcher.output()
    assert "wrong-key" not in fetcher.output()  # the key rides in the URL: never logged
