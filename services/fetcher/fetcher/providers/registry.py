"""Maps the PROVIDER setting to a tick source, so the fetcher core never names a provider."""

from __future__ import annotations

from collections.abc import Callable

from fetcher.providers.base import TickSource
from fetcher.providers.sim import SimSource
from fetcher.settings import FetcherSettings


def _sim(settings: FetcherSettings) -> TickSource:
    return SimSource(
        settings.symbols,
        ticks_per_second=settings.sim_ticks_per_second,
        seed=settings.sim_seed,
        volatility_scale=settings.sim_volatility_scale,
        max_ticks=settings.sim_max_ticks,
    )


def _replay(settings: FetcherSettings) -> TickSource:
    from fetcher.providers.replay import ReplaySource

    if settings.replay_path is None:
        raise ValueError("PROVIDER=replay needs REPLAY_PATH (a CSV or Parquet file)")
    return ReplaySource(
        settings.replay_path,
        speed=settings.replay_speed,
        kind=settings.replay_kind,
        bar_seconds=settings.replay_bar_seconds,
        max_pause_seconds=settings.replay_max_pause_seconds,
        shift_to_now=settings.replay_shift_to_now,
    )


def _polling(
    chain_of: Callable[[FetcherSettings], list[str]], label: Callable[[FetcherSettings], str]
) -> Callable[[FetcherSettings], TickSource]:
    def build(settings: FetcherSettings) -> TickSource:
        from fetcher.providers.factory import build_market_hours, build_router, build_watchlist
        from fetcher.providers.polling import PollingSource

        return PollingSource(
            label(settings),
            build_router(settings, chain_of(settings)),
            build_watchlist(settings),
            settings.poll_interval_seconds,
            build_market_hours(settings),
        )

    return build


def _failover_chain(settings: FetcherSettings) -> list[str]:
    if not settings.provider_chain:
        raise ValueError("PROVIDER=failover needs PROVIDER_CHAIN, e.g. 'finnhub,alphavantage'")
    return settings.provider_chain


def _alpaca_stream(settings: FetcherSettings) -> TickSource:
    from fetcher.providers.alpaca_stream import AlpacaTradeStream
    from fetcher.providers.factory import _require, build_alpaca, build_watchlist

    return AlpacaTradeStream(
        settings.alpaca_stream_url,
        _require(settings.alpaca_api_key_id, "ALPACA_API_KEY_ID", "alpaca-stream"),
        _require(settings.alpaca_api_secret_key, "ALPACA_API_SECRET_KEY", "alpaca-stream"),
        build_alpaca(settings),
        build_watchlist(settings),
        max_symbols=settings.alpaca_stream_max_symbols,
        poll_interval=settings.poll_interval_seconds,
        backoff_base=settings.backoff_base_seconds,
        backoff_cap=settings.backoff_max_seconds,
    )


def _finnhub_stream(settings: FetcherSettings) -> TickSource:
    from fetcher.providers.factory import _require, build_finnhub, build_watchlist
    from fetcher.providers.finnhub_stream import FinnhubTradeStream

    return FinnhubTradeStream(
        settings.finnhub_stream_url,
        _require(settings.finnhub_api_key, "FINNHUB_API_KEY", "finnhub-stream"),
        build_finnhub(settings),
        build_watchlist(settings),
        max_symbols=settings.finnhub_stream_max_symbols,
        poll_interval=settings.poll_interval_seconds,
        backoff_base=settings.backoff_base_seconds,
        backoff_cap=settings.backoff_max_seconds,
    )


SOURCES: dict[str, Callable[[FetcherSettings], TickSource]] = {
    "sim": _sim,
    "replay": _replay,
    "alphavantage": _polling(lambda s: ["alphavantage"], lambda s: "alphavantage"),
    "finnhub": _polling(lambda s: ["finnhub"], lambda s: "finnhub"),
    "alpaca": _polling(lambda s: ["alpaca"], lambda s: "alpaca"),
    "failover": _polling(_failover_chain, lambda s: "failover"),
    "alpaca-stream": _alpaca_stream,
    "finnhub-stream": _finnhub_stream,
}


def build_source(settings: FetcherSettings) -> TickSource:
    try:
        factory = SOURCES[settings.provider]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown provider {settings.provider!r}; known: {known}") from None
    return factory(settings)
