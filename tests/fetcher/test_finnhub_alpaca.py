"""Finnhub and Alpaca REST clients against their documented shapes on a loopback server."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from fetcher.providers.alpaca import trade_to_quote
from fetcher.providers.errors import RateLimitedError, RequestRejected, SymbolNotFound
from fetcher.tick_builder import TickBuilder
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text, metric

REQUESTS = "stocktrack_fetcher_provider_requests_total"


async def test_finnhub_quote(fake_provider: FakeProvider) -> None:
    fake_provider.script("/quote", Reply(fixture_text("finnhub/quote.json")))
    client = clients.finnhub(fake_provider.url)
    try:
        quote = await client.quote("AAPL")
    finally:
        await client.aclose()
    assert quote.price == Decimal("261.74")
    assert quote.ts_ms == 1715371200 * 1000
    assert quote.stamp == "1715371200"
    assert fake_provider.requests[0].headers["X-Finnhub-Token"] == clients.FINNHUB_KEY
    assert "token" not in fake_provider.requests[0].query  # the key never rides in the URL


async def test_finnhub_unknown_symbol_rate_limit_and_bad_key(fake_provider: FakeProvider) -> None:
    fake_provider.script("/quote?symbol=NOPE", Reply(fixture_text("finnhub/quote_unknown.json")))
    fake_provider.script(
        "/quote?symbol=BUSY",
        Reply(fixture_text("finnhub/rate_limit.json"), status=429, headers={"Retry-After": "0"}),
    )
    fake_provider.script("/quote?symbol=AUTH", Reply(fixture_text("finnhub/invalid_key.json"), status=401))
    limited = metric(REQUESTS, provider="finnhub", outcome="rate_limited")
    client = clients.finnhub(fake_provider.url, attempts=3)
    try:
        with pytest.raises(SymbolNotFound):
            await client.quote("NOPE")
        with pytest.raises(RateLimitedError):
            await client.quote("BUSY")
        with pytest.raises(RequestRejected):
            await client.quote("AUTH")
    finally:
        await client.aclose()
    assert metric(REQUESTS, provider="finnhub", outcome="rate_limited") - limited == 3


async def test_alpaca_snapshot_gives_trade_time_and_day_volume(fake_provider: FakeProvider) -> None:
    fake_provider.script("/v2/stocks/AAPL/snapshot", Reply(fixture_text("alpaca/snapshot.json")))
    client = clients.alpaca(fake_provider.url)
    try:
        quote = await client.quote("AAPL")
    finally:
        await client.aclose()
    assert quote.price == Decimal("183.05")
    assert quote.ts_ms == int(datetime(2024, 5, 10, 15, 31, 2, 412345, tzinfo=UTC).timestamp() * 1000)
    assert quote.day_volume == 1210345
    assert quote.trading_day == date(2024, 5, 10)
    headers = fake_provider.requests[0].headers
    assert headers["APCA-API-KEY-ID"] == clients.ALPACA_KEY_ID
    assert fake_provider.requests[0].query["feed"] == "iex"


async def test_alpaca_invalid_symbol(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/v2/stocks/NOPE/snapshot", Reply(fixture_text("alpaca/invalid_symbol.json"), status=422)
    )
    client = clients.alpaca(fake_provider.url)
    try:
        with pytest.raises(SymbolNotFound):
            await client.quote("NOPE")
    finally:
        await client.aclose()


async def test_alpaca_trades_follow_pages(fake_provider: FakeProvider) -> None:
    fake_provider.script("/v2/stocks/AAPL/trades", Reply(fixture_text("alpaca/trades_page1.json")))
    token = "QUFQTHwyMDI0LTA1LTEwVDE1OjMxOjAwLjI1WnwxMDAy"
    fake_provider.script(
        f"/v2/stocks/AAPL/trades?page_token={token}", Reply(fixture_text("alpaca/trades_page2.json"))
    )
    client = clients.alpaca(fake_provider.url)
    try:
        trades = await client.trades(
            "AAPL", datetime(2024, 5, 10, 15, 31, tzinfo=UTC), datetime(2024, 5, 10, 15, 32, tzinfo=UTC)
        )
    finally:
        await client.aclose()
    assert [t.stamp for t in trades] == ["V|1001", "V|1002", "V|1003"]  # ids are unique per exchange only
    assert {r.query["feed"] for r in fake_provider.requests} == {"iex"}  # gap fill matches the live feed
    assert [t.trade_size for t in trades] == [100, 50, 200]
    assert fake_provider.requests[0].query["start"] == "2024-05-10T15:31:00.000000Z"


async def test_alpaca_daily_bars_carry_the_adjusted_close(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/v2/stocks/AAPL/bars?adjustment=raw", Reply(fixture_text("alpaca/bars_1day_raw.json"))
    )
    fake_provider.script(
        "/v2/stocks/AAPL/bars?adjustment=all", Reply(fixture_text("alpaca/bars_1day_all.json"))
    )
    client = clients.alpaca(fake_provider.url)
    try:
        bars = await client.daily_bars("AAPL", date(2024, 5, 9), date(2024, 5, 10))
    finally:
        await client.aclose()
    assert [(b.day, b.close, b.adj_close) for b in bars] == [
        (date(2024, 5, 9), Decimal("184.57"), Decimal("184.33")),
        (date(2024, 5, 10), Decimal("183.05"), Decimal("183.05")),
    ]
    assert bars[0].volume == 1503221 and bars[0].source == "alpaca"


async def test_alpaca_history_comes_from_sip_ending_15_minutes_ago(fake_provider: FakeProvider) -> None:
    fake_provider.script("/v2/stocks/AAPL/bars", Reply(fixture_text("alpaca/bars_1min.json")))
    client = clients.alpaca(fake_provider.url)
    now = datetime.now(UTC)
    try:
        await client.minute_bars("AAPL", now - timedelta(hours=2), now)
    finally:
        await client.aclose()
    (request,) = fake_provider.requests
    assert request.query["feed"] == "sip"  # the whole tape, not IEX's ~3% of volume
    end = datetime.fromisoformat(request.query["end"].replace("Z", "+00:00"))
    assert now - timedelta(minutes=15, seconds=5) <= end <= now - timedelta(minutes=14, seconds=59)


def test_same_trade_id_on_two_exchanges_is_two_trades() -> None:
    builder = TickBuilder()
    base = {"t": "2024-05-10T15:31:00Z", "p": 183.0, "s": 10, "i": 7}
    first = builder.to_tick(trade_to_quote("AAPL", {**base, "x": "V"}))
    other_exchange = builder.to_tick(trade_to_quote("AAPL", {**base, "x": "Q"}))
    again = builder.to_tick(trade_to_quote("AAPL", {**base, "x": "V"}))
    assert first is not None and other_exchange is not None
    assert again is None  # the same (exchange, id) twice is one trade
