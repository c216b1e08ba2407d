"""The README's configuration table names every environment variable a service reads."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

SETTINGS_MODULES = [
    "stocktrack_common.settings",
    "stocktrack_common.emf",
    "fetcher.settings",
    "writer.settings",
    "api.settings",
    "api.dashboard.routes",
    "streamer.settings",
    "recommender.settings",
    "janitor.settings",
    "alerts.settings",
]


def env_names() -> set[str]:
    names: set[str] = set()
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value.__module__ == module_name
            ):
                prefix = str(value.model_config.get("env_prefix") or "")
                names.update(f"{prefix}{field}".upper() for field in value.model_fields)
    return names


@pytest.mark.parametrize("name", sorted(env_names()))
def test_readme_documents(name: str) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert re.search(rf"(?<![A-Z_]){name}(?![A-Z_])", readme), f"{name} missing from README"
