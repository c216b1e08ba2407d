"""Builds provider clients, buckets and breakers from settings (one place that reads the keys)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import structlog
from pydantic import SecretStr

from fetcher.circuit_breaker import CircuitBreaker
from fetcher.daily_quota import DailyQuota
from fetcher.market_hours import MarketHours
from fetcher.provider_http import ProviderHttp
from fetcher.providers import alpaca, alphavantage, finnhub
from fetcher.providers.plugin import load_plugins
from fetcher.providers.router import QuoteClient, QuoteRouter
from fetcher.rate_limit import TokenBucket
from fetcher.settings import FetcherSettings
from fetcher.watchlist import WatchList, db_symbol_loader
from stocktrack_common.redis_client import redis_from_url

if TYPE_CHECKING:
    from fetcher.providers.streaming import StreamTuning

log = structlog.get_logger(__name__)


def require(value: SecretStr | None, env: str, provider: str) -> SecretStr:
    if value is None or not value.get_secret_value():
        raise ValueError(f"provider {provider} needs {env}")
    return value


def provider_http(
    settings: FetcherSettings,
    provider: str,
    base_url: str,
    rpm: float,
    headers: dict[str, str],
    quota: DailyQuota | None = None,
    key_setting: str | None = None,
) -> ProviderHttp:
    return ProviderHttp(
        provider,
        base_url,
        TokenBucket(provider, rpm),
        timeout_seconds=settings.http_timeout_seconds,
        max_attempts=settings.http_max_attempts,
        backoff_base=settings.backoff_base_seconds,
        backoff_cap=settings.backoff_max_seconds,
        headers=headers,
        quota=quota,
        key_setting=key_setting,
    )


def build_daily_quota(settings: FetcherSettings, provider: str, per_day: int) -> DailyQuota | None:
    """The provider's daily budget in Redis (its client is closed with the provider's HTTP client)."""
    if per_day <= 0:
        return None
    redis = redis_from_url(settings.redis_url.get_secret_value(), cluster=settings.redis_cluster)
    return DailyQuota(provider, per_day, redis, settings.stream_prefix)


def build_alphavantage(settings: FetcherSettings) -> alphavantage.AlphaVantageClient:
    key = require(settings.alphavantage_api_key, "ALPHAVANTAGE_API_KEY", "alphavantage")
    http = provider_http(
        settings,
        "alphavantage",
        settings.alphavantage_base_url,
        settings.alphavantage_requests_per_minute,
        {},
        quota=build_daily_quota(settings, "alphavantage", settings.alphavantage_requests_per_day),
    )
    client = alphavantage.AlphaVantageClient(
        http,
        key,
        plan=settings.alphavantage_plan,
        session_close=build_market_hours(settings).session_close,
    )
    if client.end_of_day:
        log.info(
            "alphavantage quotes are end-of-day on this plan: each is the last session's close",
            plan=settings.alphavantage_plan,
            requests_per_day=settings.alphavantage_requests_per_day,
        )
    return client


def build_finnhub(settings: FetcherSettings) -> finnhub.FinnhubClient:
    key = require(settings.finnhub_api_key, "FINNHUB_API_KEY", "finnhub")
    headers = finnhub.auth_headers(key)
    return finnhub.FinnhubClient(
        provider_http(
            settings,
            "finnhub",
            settings.finnhub_base_url,
            settings.finnhub_requests_per_minute,
            headers,
            key_setting="FINNHUB_API_KEY",
        )
    )


def build_alpaca(settings: FetcherSettings) -> alpaca.AlpacaClient:
    key_id = require(settings.alpaca_api_key_id, "ALPACA_API_KEY_ID", "alpaca")
    secret = require(settings.alpaca_api_secret_key, "ALPACA_API_SECRET_KEY", "alpaca")
    headers = alpaca.auth_headers(key_id, secret)
    http = provider_http(
        settings,
        "alpaca",
        settings.alpaca_data_url,
        settings.alpaca_requests_per_minute,
        headers,
        key_setting="ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY",
    )
    return alpaca.AlpacaClient(http, feed=settings.alpaca_feed, history_feed=settings.alpaca_history_feed)


def build_clients(settings: FetcherSettings, names: Iterable[str]) -> dict[str, QuoteClient]:
    """Polling clients of the named providers, from their registered plugins."""
    plugins = {name: p for name, p in load_plugins().items() if p.quote_client is not None}
    clients: dict[str, QuoteClient] = {}
    for name in names:
        if name in clients:
            continue
        plugin = plugins.get(name)
        if plugin is None or plugin.quote_client is None:
            raise ValueError(f"unknown polling provider {name!r}; known: {', '.join(sorted(plugins))}")
        clients[name] = plugin.quote_client(settings, plugin.own_settings())
    return clients


def build_router(settings: FetcherSettings, chain: list[str]) -> QuoteRouter:
    names = list(chain) + [n for route in settings.provider_routes.values() for n in route]
    clients = build_clients(settings, names)
    breakers = {
        name: CircuitBreaker(name, settings.circuit_failure_threshold, settings.circuit_reset_seconds)
        for name in clients
    }
    return QuoteRouter(clients, chain, breakers, routes=settings.provider_routes)


def stream_tuning(settings: FetcherSettings, max_symbols: int) -> StreamTuning:
    """The pacing every trade stream takes from the fetcher's settings; only the symbol cap differs."""
    return {
        "max_symbols": max_symbols,
        "poll_interval": settings.poll_interval_seconds,
        "backoff_base": settings.backoff_base_seconds,
        "backoff_cap": settings.backoff_max_seconds,
    }


def build_watchlist(settings: FetcherSettings) -> WatchList:
    loader = (
        db_symbol_loader(settings.database_url.get_secret_value()) if settings.watchlist_from_db else None
    )
    return WatchList(settings.symbols, loader, settings.watchlist_reload_seconds)


def build_market_hours(settings: FetcherSettings) -> MarketHours:
    return MarketHours(settings.market_calendar, settings.market_session)
