"""Fixtures of the fault tests: a PostgreSQL of the test's own, which it may stop and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stocktrack_devtools.servers import EmbeddedPostgres


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """Embedded binaries on a free port and the test's own data dir; never the shared server."""
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.start()
    yield server
    server.stop()
