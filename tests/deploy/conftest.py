"""Fixtures shared by the deploy tests."""

from __future__ import annotations

import pytest

from tests.deploy import installed_env


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> installed_env.InstalledEnv:
    """The project installed from its wheels, as in the images (built once per run)."""
    return installed_env.create(tmp_path_factory.mktemp("wheels"))
