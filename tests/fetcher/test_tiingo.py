"""Tiingo, a provider added as one module plus its entry point, against a loopback stand-in."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from fetcher.backfill import backfill
from fetcher.providers.errors import InvalidCredentials, RateLimitedError, SymbolNotFound
from fetcher.providers.plugin import ENTRY_POINT_GROUP, ProviderPlugin, load_plugins
from fetcher.providers.polling import PollingSource
from fetcher.providers.registry import build_source
from fetcher.providers.tiingo import KEY_SETTING, TiingoClient, auth_headers
from fetcher.settings import FetcherSettings
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text

TIINGO_KEY = "TIINGOKEY-5e1c"
PYPROJECT = Path(__file__).resolve().parents[2] / "services" / "fetcher" / "pyproject.toml"


def tiingo(url: str, attempts: int = 2) -> TiingoClient:
    http = clients.http("tiingo", url, attempts=attempts, headers=auth_headers(SecretStr(TIINGO_KEY)))
    http.key_setting = KEY_SETTING
    return TiingoClient(http)


async def test_iex_quote_is_the_last_iex_trade(fake_provider: FakeProvider) -> None:
    fake_provider.script("/iex/aapl", Reply(fixture_text("tiingo/iex.json")))
    client = tiingo(fake_provider.url)
    try:
        quote = await client.quote("AAPL")
    finally:
        await client.aclose()
    assert quote.price == Decimal("183.05") and quote.source == "tiingo"
    assert quote.ts_ms == int(datetime(2024, 5, 10, 19, 31, 2, 412000, tzinfo=UTC).timestamp() * 1000)
    assert quote.day_volume == 1210345 and quote.trading_day == date(2024, 5, 10)
    assert fake_provider.requests[0].headers["Authorization"] == f"Token {TIINGO_KEY}"


async def test_after_the_close_the_tiingo_last_price_is_used(fake_provider: FakeProvider) -> None:
    fake_provider.script("/iex/aapl", Reply(fixture_text("tiingo/iex_after_close.json")))
    client = tiingo(fake_provider.url)
    try:
        quote = await client.quote("AAPL")
    finally:
        await client.aclose()
    assert quote.price == Decimal("183.05")
    assert quote.ts_ms == int(datetime(2024, 5, 10, 16, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("fixture", "status", "error", "requests"),
    [
        ("tiingo/invalid_token.json", 401, InvalidCredentials, 1),
        ("tiingo/rate_limit_hourly.json", 429, RateLimitedError, 2),
        ("tiingo/not_found.json", 404, SymbolNotFound, 1),
    ],
)
async def test_error_answers(
    fake_provider: FakeProvider, fixture: str, status: int, error: type[Exception], requests: int
) -> None:
    fake_provider.script("/iex/aapl", Reply(fixture_text(fixture), status=status))
    client = tiingo(fake_provider.url)
    try:
        with pytest.raises(error) as caught:
            await client.quote("AAPL")
    finally:
        await client.aclose()
    assert type(caught.value) is error
    assert len(fake_provider.requests) == requests
    if isinstance(caught.value, InvalidCredentials):
        assert caught.value.setting == "TIINGO_API_KEY"


async def test_daily_history_carries_the_adjusted_close_across_a_split(
    fake_provider: FakeProvider, db_url: str
) -> None:
    fake_provider.script("/tiingo/daily/aapl/prices", Reply(fixture_text("tiingo/daily_prices.json")))
    client = tiingo(fake_provider.url)
    try:
        result = await backfill(db_url, client, ["AAPL"], date(2020, 8, 1), date(2020, 8, 31), progress=False)
    finally:
        await client.aclose()
    assert result.rows == 2 and not result.failures
    query = fake_provider.requests[0].query
    assert (query["startDate"], query["endDate"]) == ("2020-08-01", "2020-08-31")


def test_providers_are_registered_by_entry_point_and_one_module_each() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    for name, target in declared.items():
        module, _, attribute = target.partition(":")
        plugin = getattr(import_module(module), attribute)
        assert isinstance(plugin, ProviderPlugin) and plugin.name == name
    assert set(load_plugins()) == set(declared)  # what is installed is what is declared


def test_provider_setting_selects_the_registered_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIINGO_API_KEY", TIINGO_KEY)
    settings = FetcherSettings(provider="tiingo", symbols=["AAPL"], watchlist_from_db=False)
    source = build_source(settings)
    assert isinstance(source, PollingSource) and source.name == "tiingo"
    assert list(source.router.providers) == ["tiingo"]
    monkeypatch.delenv("TIINGO_API_KEY")
    with pytest.raises(ValueError, match="TIINGO_API_KEY"):
        build_source(settings)


async def test_a_split_after_a_completed_chunk_refetches_the_adjusted_history(
    fake_provider: FakeProvider, db_url: str
) -> None:
    before = fixture_text("tiingo/daily_prices.json")
    # The same history as published after a later adjustment: older adjusted closes change.
    after = before.replace('"adjClose":123.45', '"adjClose":30.86')
    fake_provider.script(
        "/tiingo/daily/aapl/prices",
        Reply(before.replace('"splitFactor":4.0', '"splitFactor":1.0')),
        Reply(before),
        Reply(after),
    )
    client = tiingo(fake_provider.url)
    try:
        first = await backfill(db_url, client, ["AAPL"], date(2020, 8, 1), date(2020, 8, 28), progress=False)
        with psycopg.connect(db_url, autocommit=True) as conn:
            # Completed before the split of 2020-08-31 was known.
            conn.execute("UPDATE backfill_progress SET completed_at = '2020-08-29T00:00:00Z'")
        second = await backfill(db_url, client, ["AAPL"], date(2020, 8, 1), date(2020, 8, 28), progress=False)
    finally:
        await client.aclose()
    assert first.chunks_done == 1 and first.chunks_reopened == 0
    assert second.chunks_reopened == 1 and second.chunks_done == 1 and second.chunks_skipped == 0
    with psycopg.connect(db_url) as conn:
        (adj,) = conn.execute(  # type: ignore[misc]
            "SELECT adj_close FROM daily_bars WHERE symbol = 'AAPL' AND day = '2020-08-28'"
        ).fetchone()
    assert adj == Decimal("30.86")
    assert fake_provider.requests[1].query["startDate"] == "2020-08-29"  # asked only since the completion
