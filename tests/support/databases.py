"""Per-test databases on a shared server: clones of one migrated template, named by the caller."""

from __future__ import annotations

import psycopg
from psycopg import sql

from stocktrack_devtools.servers import database_url


def clone_database(server_url: str, template: str, name: str) -> str:
    """Create `name` as a copy of the migrated template (much faster than migrating) and return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    return database_url(server_url, name)
