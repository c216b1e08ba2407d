"""Janitor fixtures: settings bound to the test's database, Redis and prefix, and an in-process runner."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from janitor.app import Janitor, expand
from janitor.emf_lines import EmfWriter
from janitor.report import TaskReport
from janitor.settings import JanitorSettings

RunJanitor = Callable[..., Awaitable[list[TaskReport]]]


@pytest.fixture
def janitor_settings(db_url: str, redis_url: str, prefix: str) -> Callable[..., JanitorSettings]:
    def make(**overrides: Any) -> JanitorSettings:
        values: dict[str, Any] = {
            "database_url": SecretStr(db_url),
            "redis_url": SecretStr(redis_url),
            "stream_prefix": prefix,
            "tick_shards": 2,
            "connect_attempts": 1,
            **overrides,
        }
        return JanitorSettings(**values)

    return make


@pytest.fixture
def run_janitor(janitor_settings: Callable[..., JanitorSettings]) -> RunJanitor:
    """Run a task (or `all`) in this process; EMF lines go to a buffer instead of stdout."""

    async def run(task: str, dry_run: bool = False, **overrides: Any) -> list[TaskReport]:
        janitor = Janitor(janitor_settings(**overrides), EmfWriter("Test", out=io.StringIO()))
        return await janitor.run(expand(task), dry_run=dry_run)

    return run
