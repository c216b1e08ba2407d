"""Maps the PROVIDER setting to a tick source, so the fetcher core never names a provider.

Built in: the simulator, replay and the failover chain. Everything else comes from the
providers registered in the `stocktrack.providers` entry-point group (fetcher.providers.plugin).
"""

from __future__ import annotations

from collections.abc import Callable

from fetcher.providers.base import TickSource
from fetcher.providers.plugin import ProviderPlugin, SourceBuilder, load_plugins
from fetcher.providers.sim import SimSource
from fetcher.settings import FetcherSettings


def _sim(settings: FetcherSettings) -> TickSource:
    from fetcher.providers.factory import build_watchlist

    return SimSource(
        settings.symbols,
        watchlist=build_watchlist(settings),
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
    chain_of: Callable[[FetcherSettings], list[str]], label: str
) -> Callable[[FetcherSettings], TickSource]:
    def build(settings: FetcherSettings) -> TickSource:
        from fetcher.providers.factory import build_market_hours, build_router, build_watchlist
        from fetcher.providers.polling import PollingSource

        return PollingSource(
            label,
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


def _only(name: str) -> Callable[[FetcherSettings], list[str]]:
    def chain(_: FetcherSettings) -> list[str]:
        return [name]

    return chain


def _plugin_source(plugin: ProviderPlugin, build: SourceBuilder) -> Callable[[FetcherSettings], TickSource]:
    def source(settings: FetcherSettings) -> TickSource:
        return build(settings, plugin.own_settings())

    return source


def sources() -> dict[str, Callable[[FetcherSettings], TickSource]]:
    """The built-in sources plus, per registered provider, its polling source and its streams."""
    found: dict[str, Callable[[FetcherSettings], TickSource]] = {
        "sim": _sim,
        "replay": _replay,
        "failover": _polling(_failover_chain, "failover"),
    }
    for name, plugin in load_plugins().items():
        if plugin.quote_client is not None:
            found[name] = _polling(_only(name), name)
        for source_name, build in plugin.sources.items():
            found[source_name] = _plugin_source(plugin, build)
    return found


def build_source(settings: FetcherSettings) -> TickSource:
    known = sources()
    try:
        factory = known[settings.provider]
    except KeyError:
        raise ValueError(
            f"unknown provider {settings.provider!r}; known: {', '.join(sorted(known))}"
        ) from None
    return factory(settings)
