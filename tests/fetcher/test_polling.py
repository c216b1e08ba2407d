"""The polling fetcher end to end against the loopback providers: failover, circuit breaker,
throttling, stale quotes, and failures that must never turn into published ticks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from fetcher.circuit_breaker import CircuitBreaker
from fetcher.market_hours import MarketHours
from fetcher.providers.polling import PollingSource
from fetcher.providers.router import QuoteClient, QuoteRouter
from fetcher.watchlist import WatchList
from stocktrack_common.messages import Tick, decode_tick
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_json, fixture_text, metric
from tests.support.waiting import wait_until_async

REQUESTS = "stocktrack_fetcher_provider_requests_total"


def finnhub_quote(seconds: int, price: float) -> Reply:
    body = fixture_json("finnhub/quote.json")
    body.update(t=seconds, c=price)
    return Reply(body)


async def collect(
    source: PollingSource, until: Callable[[list[Tick]], bool] | float, what: str = "the polls"
) -> list[Tick]:
    """Run the source until `until(ticks)` holds, or for `until` seconds where nothing may happen."""
    stop = asyncio.Event()
    ticks: list[Tick] = []

    async def run() -> None:
        async for batch in source.batches(stop):
            ticks.extend(batch)

    task = asyncio.create_task(run())
    if callable(until):
        await wait_until_async(lambda: until(ticks), 10, what)
    else:
        await asyncio.sleep(until)
    stop.set()
    await asyncio.wait_for(task, 5)
    await source.aclose()
    return ticks


def polling(
    providers: dict[str, QuoteClient],
    chain: list[str],
    threshold: int = 100,
    symbols: list[str] | None = None,
) -> PollingSource:
    breakers = {name: CircuitBreaker(name, threshold, reset_seconds=3600) for name in providers}
    router = QuoteRouter(providers, chain, breakers, throttle_wait=0.05)
    return PollingSource(
        "failover", router, WatchList(symbols or ["IBM"]), 0.05, MarketHours("XNYS", "always")
    )


async def test_rate_limited_provider_fails_over_and_source_names_the_server(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/note_rate_limit.json"))
    )
    fake_provider.script("/quote", finnhub_quote(1715371200, 261.74), finnhub_quote(1715371260, 262.10))
    failovers = metric("stocktrack_fetcher_failovers_total", provider="finnhub")
    stale = metric("stocktrack_fetcher_quotes_total", provider="finnhub", outcome="stale")
    source = polling(
        {
            "alphavantage": clients.alphavantage(fake_provider.url),
            "finnhub": clients.finnhub(fake_provider.url),
        },
        ["alphavantage", "finnhub"],
    )
    ticks = await collect(
        source,
        lambda ticks: (
            len(ticks) >= 2
            and metric("stocktrack_fetcher_quotes_total", provider="finnhub", outcome="stale") > stale
        ),
        "two ticks from finnhub, then a stale quote",
    )
    assert [(t.source, t.price, t.ts) for t in ticks] == [
        ("finnhub", Decimal("261.74"), 1715371200_000),
        ("finnhub", Decimal("262.1"), 1715371260_000),
    ]
    assert metric("stocktrack_fetcher_failovers_total", provider="finnhub") - failovers >= 2
    # Later polls returned the same provider time: stale, not new ticks.
    assert metric("stocktrack_fetcher_quotes_total", provider="finnhub", outcome="stale") - stale >= 1


async def test_failures_publish_nothing_bogus_and_the_fetcher_keeps_running(
    fake_provider: FakeProvider,
) -> None:
    good = fixture_text("alphavantage/global_quote.json")
    fake_provider.script(
        "/query?function=GLOBAL_QUOTE",
        Reply("upstream down", status=503),
        Reply("{not json"),
        Reply("{}", delay=0.5),
        Reply(
            '{"Global Quote": {"05. price": "-1", "06. volume": "5", "07. latest trading day": "2024-05-10"}}'
        ),
        Reply(fixture_text("alphavantage/error_message.json")),
        Reply(good),
    )
    outcomes = ("server_error", "malformed", "timeout", "not_found", "ok")
    before = {o: metric(REQUESTS, provider="alphavantage", outcome=o) for o in outcomes}
    source = polling(
        {"alphavantage": clients.alphavantage(fake_provider.url, attempts=1, timeout=0.2)}, ["alphavantage"]
    )
    ticks = await collect(
        source,
        # The good answer is counted when it arrives and becomes a tick a moment later: wait for both.
        lambda got: (
            bool(got)
            and all(metric(REQUESTS, provider="alphavantage", outcome=o) > before[o] for o in outcomes)
        ),
        "every failure kind and the good answer's tick",
    )
    assert len(ticks) == 1  # only the one good answer became a tick
    assert ticks[0].price == Decimal("168.7400") and ticks[0].source == "alphavantage"
    decode_tick(ticks[0].to_fields())  # and it is a valid stream message
    for outcome in outcomes:
        assert metric(REQUESTS, provider="alphavantage", outcome=outcome) > before[outcome], outcome


async def test_circuit_opens_and_skips_a_dead_provider(fake_provider: FakeProvider) -> None:
    fake_provider.script("/query?function=GLOBAL_QUOTE", Reply("down", status=500))
    fake_provider.script("/quote", finnhub_quote(1715371200, 261.74))
    source = polling(
        {
            "alphavantage": clients.alphavantage(fake_provider.url, attempts=1),
            "finnhub": clients.finnhub(fake_provider.url),
        },
        ["alphavantage", "finnhub"],
        threshold=2,
    )
    ticks = await collect(
        source,
        lambda _: len([r for r in fake_provider.requests if r.path == "/quote"]) > 5,
        "finnhub to answer while alphavantage is skipped",
    )
    av_calls = [r for r in fake_provider.requests if r.path == "/query"]
    finnhub_calls = [r for r in fake_provider.requests if r.path == "/quote"]
    assert len(av_calls) == 2  # then the circuit opened and the provider was left alone
    assert len(finnhub_calls) > 5
    assert metric("stocktrack_fetcher_circuit_open", provider="alphavantage") == 1
    assert [t.source for t in ticks] == ["finnhub"]


async def test_throttled_provider_hands_over_to_the_next(fake_provider: FakeProvider) -> None:
    good = fixture_json("alphavantage/global_quote.json")
    fake_provider.script("/query?function=GLOBAL_QUOTE", Reply(good))
    # Alpha Vantage's quote of a past day is stamped at that day's close (1715371200): be later.
    fake_provider.script("/quote", finnhub_quote(1715371260, 261.74))
    throttled = metric(REQUESTS, provider="alphavantage", outcome="throttled")
    source = polling(
        {
            "alphavantage": clients.alphavantage(fake_provider.url, rpm=1),
            "finnhub": clients.finnhub(fake_provider.url),
        },
        ["alphavantage", "finnhub"],
    )
    ticks = await collect(
        source,
        lambda ticks: (
            "finnhub" in {t.source for t in ticks}
            and metric(REQUESTS, provider="alphavantage", outcome="throttled") > throttled
        ),
        "alphavantage throttled and finnhub answering",
    )
    assert len([r for r in fake_provider.requests if r.path == "/query"]) == 1  # 1 request/min: one token
    assert metric(REQUESTS, provider="alphavantage", outcome="throttled") > throttled
    assert [t.source for t in ticks][:1] == ["alphavantage"]
    assert "finnhub" in {t.source for t in ticks}


async def test_watch_list_changes_start_and_stop_polling(fake_provider: FakeProvider) -> None:
    fake_provider.script("/quote?symbol=AAPL", finnhub_quote(1715371200, 190.0))
    fake_provider.script("/quote?symbol=MSFT", finnhub_quote(1715371200, 410.0))
    table = ["AAPL"]

    async def load() -> list[str]:
        return list(table)

    providers: dict[str, QuoteClient] = {"finnhub": clients.finnhub(fake_provider.url)}
    router = QuoteRouter(providers, ["finnhub"], {"finnhub": CircuitBreaker("finnhub")})
    watchlist = WatchList([], load, reload_seconds=0.1)
    source = PollingSource("finnhub", router, watchlist, 0.05, MarketHours("XNYS", "always"))
    stop = asyncio.Event()
    seen: list[str] = []

    async def run() -> None:
        async for batch in source.batches(stop):
            seen.extend(t.symbol for t in batch)

    task = asyncio.create_task(run())
    await wait_until_async(lambda: seen == ["AAPL"], 10, "AAPL to be polled")
    table[:] = ["MSFT"]
    await wait_until_async(lambda: "MSFT" in seen, 10, "MSFT to be polled after the change")
    changed_at = len(fake_provider.requests)
    await wait_until_async(lambda: len(fake_provider.requests) >= changed_at + 3, 10, "three more polls")
    polled_after = {r.query["symbol"] for r in fake_provider.requests[-3:]}
    stop.set()
    await asyncio.wait_for(task, 5)
    await source.aclose()
    assert seen == ["AAPL", "MSFT"]
    assert polled_after == {"MSFT"}


class ClosedMarket(MarketHours):
    def seconds_until_open(self, when: datetime) -> float:
        return 3600.0


async def test_no_requests_while_the_market_is_closed(fake_provider: FakeProvider) -> None:
    fake_provider.script("/quote", finnhub_quote(1715371200, 261.74))
    providers: dict[str, QuoteClient] = {"finnhub": clients.finnhub(fake_provider.url)}
    router = QuoteRouter(providers, ["finnhub"], {"finnhub": CircuitBreaker("finnhub")})
    source = PollingSource("finnhub", router, WatchList(["AAPL", "MSFT"]), 0.01, ClosedMarket())
    ticks = await collect(source, 0.3)
    assert ticks == [] and fake_provider.requests == []
