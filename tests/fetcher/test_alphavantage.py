"""Alpha Vantage against a loopback server serving its documented shapes, quirks included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from fetcher.daily_quota import DailyQuota
from fetcher.providers.errors import (
    BurstLimited,
    InvalidCredentials,
    MalformedResponse,
    PremiumRequired,
    QuotaExhausted,
    RateLimitedError,
    RequestTimeout,
    ServerError,
    SymbolNotFound,
)
from stocktrack_common.redis_client import redis_from_url
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text, metric
from tests.fetcher.fakes import FakeClock

REQUESTS = "stocktrack_fetcher_provider_requests_total"


async def test_free_key_quote_is_end_of_day_stamped_at_the_session_close(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/global_quote.json"))
    )
    clock = FakeClock(datetime(2024, 5, 10, 15, 0, tzinfo=UTC).timestamp())
    client = clients.alphavantage(fake_provider.url, clock=clock)
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    assert client.end_of_day
    assert quote.price == Decimal("168.7400")
    assert quote.day_volume == 3127848
    assert quote.trading_day == date(2024, 5, 10)
    assert quote.ts_ms == int(datetime(2024, 5, 10, 20, 0, tzinfo=UTC).timestamp() * 1000)  # 16:00 EDT
    assert fake_provider.requests[0].query["apikey"] == clients.AV_KEY


async def test_premium_quote_is_stamped_when_observed_but_never_after_the_close(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/global_quote.json"))
    )
    during = FakeClock(datetime(2024, 5, 10, 15, 0, tzinfo=UTC).timestamp())
    saturday = FakeClock(datetime(2024, 5, 11, 15, 0, tzinfo=UTC).timestamp())
    live = clients.alphavantage(fake_provider.url, clock=during, plan="premium")
    late = clients.alphavantage(fake_provider.url, clock=saturday, plan="premium")
    try:
        assert (await live.quote("IBM")).ts_ms == int(during.now * 1000)
        assert (await late.quote("IBM")).ts_ms == int(
            datetime(2024, 5, 10, 20, tzinfo=UTC).timestamp() * 1000
        )
    finally:
        await live.aclose()
        await late.aclose()


async def test_early_close_day_is_stamped_at_the_real_close(fake_provider: FakeProvider) -> None:
    body = fixture_text("alphavantage/global_quote.json").replace("2024-05-10", "2024-11-29")
    fake_provider.script("/query?function=GLOBAL_QUOTE", Reply(body))
    client = clients.alphavantage(
        fake_provider.url, clock=FakeClock(datetime(2024, 11, 30, tzinfo=UTC).timestamp())
    )
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    # The day after Thanksgiving closes at 13:00 ET (18:00 UTC), not 16:00.
    assert quote.ts_ms == int(datetime(2024, 11, 29, 18, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("fixture", "error", "outcome", "attempts"),
    [
        ("alphavantage/information_burst.json", BurstLimited, "burst_limited", 2),
        ("alphavantage/note_rate_limit.json", RateLimitedError, "rate_limited", 2),
        ("alphavantage/information_daily_quota.json", QuotaExhausted, "quota_exhausted", 1),
        ("alphavantage/information_rate_limit.json", QuotaExhausted, "quota_exhausted", 1),
        ("alphavantage/information_premium.json", PremiumRequired, "premium_required", 1),
        ("alphavantage/information_premium_outputsize.json", PremiumRequired, "premium_required", 1),
        ("alphavantage/error_invalid_apikey.json", InvalidCredentials, "invalid_credentials", 1),
        ("alphavantage/error_message.json", SymbolNotFound, "not_found", 1),
        ("alphavantage/global_quote_unknown.json", SymbolNotFound, None, 1),
    ],
)
async def test_http_200_error_bodies_are_classified_by_meaning(
    fake_provider: FakeProvider, fixture: str, error: type[Exception], outcome: str | None, attempts: int
) -> None:
    fake_provider.script("/query?function=GLOBAL_QUOTE", Reply(fixture_text(fixture)))
    before = metric(REQUESTS, provider="alphavantage", outcome=outcome or "ok")
    client = clients.alphavantage(fake_provider.url, attempts=2, clock=FakeClock())
    try:
        with pytest.raises(error) as caught:
            await client.quote("IBM")
    finally:
        await client.aclose()
    assert type(caught.value) is error  # the exact class: a subclass would mean another meaning
    assert clients.AV_KEY not in str(caught.value)  # the quota text echoes the key
    assert len(fake_provider.requests) == attempts  # only the limits that clear by themselves are retried
    assert metric(REQUESTS, provider="alphavantage", outcome=outcome or "ok") - before == attempts


async def test_burst_is_retried_after_a_full_second_then_quotes_flow(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE",
        Reply(fixture_text("alphavantage/information_burst.json")),
        Reply(fixture_text("alphavantage/global_quote.json")),
    )
    clock = FakeClock()
    started = clock.now
    client = clients.alphavantage(fake_provider.url, clock=clock)
    try:
        quote = await client.quote("IBM")
    finally:
        await client.aclose()
    assert quote.price == Decimal("168.7400")
    assert clock.now - started >= 1.0  # the backoff cap (0.05 s here) does not shorten a per-second limit
    assert len(fake_provider.requests) == 2


async def test_daily_quota_is_shared_through_redis_and_stops_requests(
    fake_provider: FakeProvider, redis_url: str, prefix: str
) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/global_quote.json"))
    )
    clock = FakeClock(datetime(2026, 11, 27, 15, tzinfo=UTC).timestamp())
    first = clients.alphavantage(
        fake_provider.url,
        clock=clock,
        quota=DailyQuota("alphavantage", 3, redis_from_url(redis_url), prefix, clock=clock),
    )
    second = clients.alphavantage(
        fake_provider.url,
        clock=clock,
        quota=DailyQuota("alphavantage", 3, redis_from_url(redis_url), prefix, clock=clock),
    )
    try:
        await first.quote("IBM")
        await second.quote("IBM")  # a restart or another replica shares the same count
        await first.quote("IBM")
        with pytest.raises(QuotaExhausted) as caught:
            await second.quote("IBM")
        assert len(fake_provider.requests) == 3
        clock.now += 24 * 3600  # the next quota day
        await second.quote("IBM")
    finally:
        await first.aclose()
        await second.aclose()
    assert caught.value.resets_at == datetime(2026, 11, 28, 5, tzinfo=UTC).timestamp()  # midnight EST
    assert len(fake_provider.requests) == 4


async def test_quota_answer_stops_every_sharer_until_reset(
    fake_provider: FakeProvider, redis_url: str, prefix: str
) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/information_daily_quota.json"))
    )
    clock = FakeClock(datetime(2026, 11, 27, 15, tzinfo=UTC).timestamp())
    quota = DailyQuota("alphavantage", 25, redis_from_url(redis_url), prefix, clock=clock)
    client = clients.alphavantage(fake_provider.url, clock=clock, quota=quota)
    restarted = clients.alphavantage(
        fake_provider.url,
        clock=clock,
        quota=DailyQuota("alphavantage", 25, redis_from_url(redis_url), prefix, clock=clock),
    )
    try:
        with pytest.raises(QuotaExhausted):
            await client.quote("IBM")  # the provider's own word, after 1 of our 25
        for _ in range(10):
            with pytest.raises(QuotaExhausted):
                await client.quote("IBM")
            with pytest.raises(QuotaExhausted):
                await restarted.quote("MSFT")
    finally:
        await client.aclose()
        await restarted.aclose()
    assert len(fake_provider.requests) == 1


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


async def test_free_key_asks_only_for_free_history(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY", Reply(fixture_text("alphavantage/daily_compact.json"))
    )
    client = clients.alphavantage(fake_provider.url)
    try:
        assert await client.history_start("IBM", "1d") == date(2026, 7, 9)
        bars = await client.daily_bars("IBM", date(2026, 1, 1), date(2026, 12, 31))
        with pytest.raises(PremiumRequired):
            await client.minute_bars(
                "IBM", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
            )
    finally:
        await client.aclose()
    assert len(bars) == 100 and all(bar.adj_close is None for bar in bars)
    assert [(r.query["function"], r.query["outputsize"]) for r in fake_provider.requests] == [
        ("TIME_SERIES_DAILY", "compact")
    ]


async def test_premium_key_asks_for_full_adjusted_history_and_raw_intraday(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    fake_provider.script(
        "/query?function=TIME_SERIES_INTRADAY", Reply(fixture_text("alphavantage/intraday_1min.json"))
    )
    client = clients.alphavantage(fake_provider.url, plan="premium")
    try:
        assert await client.history_start("IBM", "1d") is None
        bars = await client.daily_bars("IBM", date(2024, 1, 1), date(2024, 12, 31))
        await client.minute_bars("IBM", datetime(2024, 1, 10, tzinfo=UTC), datetime(2024, 1, 11, tzinfo=UTC))
    finally:
        await client.aclose()
    assert [b.day for b in bars] == [date(2024, 5, 9), date(2024, 5, 10)]
    daily, intraday = fake_provider.requests
    assert (daily.query["function"], daily.query["outputsize"]) == ("TIME_SERIES_DAILY_ADJUSTED", "full")
    assert intraday.query["adjusted"] == "false"  # raw, like the live ticks stored beside them


async def test_premium_series_reports_dividends_and_splits(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    premium = clients.alphavantage(fake_provider.url, plan="premium")
    free = clients.alphavantage(fake_provider.url)
    try:
        assert await premium.corporate_actions("IBM", date(2024, 1, 1)) == [date(2024, 5, 9)]  # 1.67 dividend
        assert await premium.corporate_actions("IBM", date(2024, 5, 10)) == []
        assert await free.corporate_actions("IBM", date(2024, 1, 1)) == []  # nothing adjusted to refresh
    finally:
        await premium.aclose()
        await free.aclose()
    assert len(fake_provider.requests) == 1  # the cached series answers both questions
