"""The README's configuration table names every environment variable a service reads.

Market-data providers read their own variables (their module's settings model, registered with
the provider in the `stocktrack.providers` entry-point group), so those count too.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from fetcher.providers.plugin import load_plugins

# Each service's settings class; nested sub-models (db, emf, consumer) are reached from these.
SERVICE_SETTINGS = [
    ("fetcher.settings", "FetcherSettings"),
    ("writer.settings", "WriterSettings"),
    ("api.settings", "ApiSettings"),
    ("streamer.settings", "StreamerSettings"),
    ("recommender.settings", "RecommenderSettings"),
    ("janitor.settings", "JanitorSettings"),
    ("alerts.settings", "AlertsSettings"),
]


def variables_of(settings: type[BaseSettings]) -> set[str]:
    """The variables pydantic-settings reads: an alias as it is, else env_prefix + field name."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseSettings):
            names |= variables_of(nested)
        elif isinstance(field.validation_alias, str):
            names.add(field.validation_alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def env_names() -> set[str]:
    names: set[str] = set()
    for module_name, class_name in SERVICE_SETTINGS:
        names |= variables_of(getattr(importlib.import_module(module_name), class_name))
    for plugin in load_plugins().values():
        if plugin.settings_model is not None:
            names |= variables_of(plugin.settings_model)
    return names


def test_provider_variables_are_counted() -> None:
    assert {
        "ALPHAVANTAGE_PLAN",
        "ALPACA_STREAM_MAX_SYMBOLS",
        "FINNHUB_API_KEY",
        "TIINGO_API_KEY",
    } <= env_names()


def test_nested_variables_keep_their_flat_names() -> None:
    names = env_names()
    assert {
        "DB_POOL_MAX",
        "EMF_ENABLED",
        "WRITER_BATCH_SIZE",
        "MAX_DELIVERIES",
        "DASHBOARD_STREAM_URL",
    } <= names
    assert not {"DB", "EMF", "CONSUMER", "WRITER_MAX_DELIVERIES"} & names


@pytest.mark.parametrize("name", sorted(env_names()))
def test_readme_documents(name: str) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert re.search(rf"(?<![A-Z_]){name}(?![A-Z_])", readme), f"{name} missing from README"
