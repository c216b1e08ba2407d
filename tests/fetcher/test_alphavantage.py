"""Alpha Vantage against a loopback server serving its documented shapes, quirks included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fetcher.providers.errors import (
    MalformedResponse,
    RateLimitedError,
    RequestRejected,
    RequestTimeout,
    ServerError,
    SymbolNotFound,
)
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text, metric
from tests.fetcher.fakes import FakeClock

REQUESTS = "stocktrack_fetcher_provider_requests_total"


async def test_global_quote_numbers_arrive_as_strings(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/global_quote.json"))
    )
    clock = FakeClock(datetime(2024, 5, 10, 15, 0, tzinfo=UTC).timestamp())
    client = clients.alphavantage(fake_provider.url, clock=clock)
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    assert quote.price == Decimal("168.7400")
    assert quote.day_volume == 3127848
    assert quote.trading_day == date(2024, 5, 10)
    assert quote.ts_ms == int(clock.now * 1000)  # no intraday time in GLOBAL_QUOTE: observation time
    assert fake_provider.requests[0].query["apikey"] == clients.AV_KEY


async def test_old_quote_is_stamped_at_its_session_close(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/global_quote.json"))
    )
    clock = FakeClock(datetime(2024, 5, 11, 15, 0, tzinfo=UTC).timestamp())  # Saturday
    client = clients.alphavantage(fake_provider.url, clock=clock)
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    assert quote.ts_ms == int(datetime(2024, 5, 10, 20, 0, tzinfo=UTC).timestamp() * 1000)  # 16:00 EDT


@pytest.mark.parametrize(
    ("fixture", "error", "outcome"),
    [
        ("alphavantage/note_rate_limit.json", RateLimitedError, "rate_limited"),
        ("alphavantage/information_rate_limit.json", RateLimitedError, "rate_limited"),
        ("alphavantage/information_premium.json", RequestRejected, "rejected"),
        ("alphavantage/error_message.json", SymbolNotFound, "not_found"),
        ("alphavantage/global_quote_unknown.json", SymbolNotFound, None),
    ],
)
async def test_http_200_error_bodies_are_not_data(
    fake_provider: FakeProvider, fixture: str, error: type[Exception], outcome: str | None
) -> None:
    fake_provider.script("/query?function=GLOBAL_QUOTE", Reply(fixture_text(fixture)))
    before = metric(REQUESTS, provider="alphavantage", outcome=outcome or "ok")
    client = clients.alphavantage(fake_provider.url, attempts=2)
    try:
        with pytest.raises(error):
            await client.quote("IBM")
    finally:
        await client.aclose()
    expected = 2 if error is RateLimitedError else 1  # quota answers are retried with backoff
    assert len(fake_provider.requests) == expected
    assert metric(REQUESTS, provider="alphavantage", outcome=outcome or "ok") - before == expected


async def test_500_then_success_is_retried(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE",
        Reply("oops", status=500),
        Reply(fixture_text("alphavantage/global_quote.json")),
    )
    client = clients.alphavantage(fake_provider.url)
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    assert quote.price == Decimal("168.7400")
    assert len(fake_provider.requests) == 2


async def test_persistent_500_timeout_and_malformed_json(fake_provider: FakeProvider) -> None:
    fake_provider.script("/query?function=GLOBAL_QUOTE&symbol=A", Reply("bad gateway", status=502))
    fake_provider.script("/query?function=GLOBAL_QUOTE&symbol=B", Reply("{}", delay=1.0))
    fake_provider.script("/query?function=GLOBAL_QUOTE&symbol=C", Reply('{"Global Quote": {"05. price": '))
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE&symbol=D",
        Reply(
            '{"Global Quote": {"05. price": "NaN", "06. volume": "1", '
            '"07. latest trading day": "2024-05-10"}}'
        ),
    )
    client = clients.alphavantage(fake_provider.url, attempts=2, timeout=0.2)
    timeouts = metric(REQUESTS, provider="alphavantage", outcome="timeout")
    try:
        with pytest.raises(ServerError):
            await client.quote("A")
        with pytest.raises(RequestTimeout):
            await client.quote("B")
        with pytest.raises(MalformedResponse):
            await client.quote("C")
        with pytest.raises(MalformedResponse):
            await client.quote("D")
    finally:
        await client.aclose()
    assert metric(REQUESTS, provider="alphavantage", outcome="timeout") - timeouts == 2


async def test_intraday_times_are_us_eastern_in_winter_and_summer(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_INTRADAY&symbol=IBM",
        Reply(fixture_text("alphavantage/intraday_1min.json")),
    )
    fake_provider.script(
        "/query?function=TIME_SERIES_INTRADAY&symbol=IBMS",
        Reply(fixture_text("alphavantage/intraday_1min_summer.json")),
    )
    client = clients.alphavantage(fake_provider.url)
    try:
        winter = await client.intraday("IBM")
        summer = await client.intraday("IBMS")
    finally:
        await client.aclose()
    assert [b.bucket for b in winter] == [
        datetime(2024, 1, 10, 14, 30, tzinfo=UTC),  # 09:30 EST = UTC-5
        datetime(2024, 1, 10, 14, 31, tzinfo=UTC),
        datetime(2024, 1, 10, 14, 32, tzinfo=UTC),
    ]
    assert winter[0].open == Decimal("160.9000") and winter[0].volume == 120881
    assert summer[0].bucket == datetime(2024, 7, 10, 13, 30, tzinfo=UTC)  # 09:30 EDT = UTC-4


async def test_daily_adjusted_and_unadjusted(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    fake_provider.script("/query?function=TIME_SERIES_DAILY", Reply(fixture_text("alphavantage/daily.json")))
    client = clients.alphavantage(fake_provider.url)
    try:
        adjusted = await client.daily("IBM", adjusted=True)
        raw = await client.daily("IBM", adjusted=False)
    finally:
        await client.aclose()
    may9 = next(b for b in adjusted if b.day == date(2024, 5, 9))
    assert may9.close == Decimal("167.1500") and may9.adj_close == Decimal("165.4800")
    assert may9.volume == 4260425
    assert [b.day for b in adjusted] == sorted(b.day for b in adjusted)
    assert all(b.adj_close is None for b in raw) and raw[-1].volume == 3127848


async def test_daily_falls_back_to_unadjusted_when_adjusted_is_premium(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED",
        Reply(fixture_text("alphavantage/information_premium.json")),
    )
    fake_provider.script("/query?function=TIME_SERIES_DAILY", Reply(fixture_text("alphavantage/daily.json")))
    client = clients.alphavantage(fake_provider.url)
    try:
        bars = await client.daily_bars("IBM", date(2024, 1, 1), date(2024, 12, 31))
    finally:
        await client.aclose()
    assert [b.day for b in bars] == [date(2024, 5, 9), date(2024, 5, 10)]
