"""Providers register themselves: one module declares a `ProviderPlugin`, one entry point names it.

The fetcher core never lists providers. Each provider module exports a `PLUGIN` (its name, a
one-line summary, its own settings model, and builders for what it can do: a polling quote
client, a history client for `stocktrack backfill`, streaming sources), and the fetcher package
declares it in the `stocktrack.providers` entry-point group. Adding a provider is that module
plus one line in pyproject.toml (and its fixtures and tests).

The provider's settings model is read from the environment once, when a source or client is
built at startup, so its variables live next to the code that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from fetcher.backfill import HistoryClient
    from fetcher.providers.base import TickSource
    from fetcher.providers.router import QuoteClient
    from fetcher.settings import FetcherSettings

ENTRY_POINT_GROUP = "stocktrack.providers"

QuoteBuilder = Callable[["FetcherSettings", Any], "QuoteClient"]
HistoryBuilder = Callable[["FetcherSettings", Any], "HistoryClient"]
SourceBuilder = Callable[["FetcherSettings", Any], "TickSource"]


@dataclass(frozen=True)
class ProviderPlugin:
    name: str
    summary: str
    settings_model: type[BaseSettings] | None = None
    quote_client: QuoteBuilder | None = None
    history_client: HistoryBuilder | None = None
    sources: Mapping[str, SourceBuilder] = field(default_factory=dict)

    def own_settings(self) -> Any:
        """The provider's own settings from the environment (None when it has none)."""
        return self.settings_model() if self.settings_model is not None else None


def load_plugins() -> dict[str, ProviderPlugin]:
    """Every installed provider by name; a broken declaration fails loudly at startup."""
    plugins: dict[str, ProviderPlugin] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in plugins:
            continue
        plugin = entry.load()
        if not isinstance(plugin, ProviderPlugin) or plugin.name != entry.name:
            raise TypeError(
                f"entry point {entry.name!r} ({entry.value}) is not the ProviderPlugin of that name"
            )
        plugins[entry.name] = plugin
    return plugins
