"""What every provider's client is built with: HTTP with its bucket and retries, daily quotas, breakers, watch list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import SecretStr

from fetcher.circuit_breaker import CircuitBreaker
from fetcher.daily_quota import DailyQuota
from fetcher.market_hours import MarketHours
from fetcher.provider_http import ProviderHttp
from fetcher.providers.plugin import load_plugins
from fetcher.providers.router import QuoteClient, QuoteRouter
from fetcher.rate_limit import TokenBucket
from fetcher.settings import FetcherSettings
from fetcher.watchlist import WatchList, db_symbol_loader
from stocktrack_common.redis_client import redis_from_url

if TYPE_CHECKING:
    from fetcher.providers.streaming import StreamTuning


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
