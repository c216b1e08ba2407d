"""Versioned SQL migrations: NNNN_name.sql files applied in order, each in its own transaction.

A table records what ran (with a checksum, so an edited migration is caught rather than
silently skipped) and an advisory lock keeps two pods starting at once from racing.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
import structlog

log = structlog.get_logger(__name__)

MIGRATION_LOCK_ID = 727_001  # advisory lock key; any constant shared by all migrators works
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def applied_versions(conn: psycopg.Connection) -> dict[int, str]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}


def migration_status(applied: dict[int, str]) -> tuple[list[Migration], list[Migration]]:
    """Shipped migrations not applied yet, and applied ones whose file changed since (by checksum)."""
    shipped = load_migrations()
    pending = [m for m in shipped if m.version not in applied]
    edited = [m for m in shipped if applied.get(m.version, m.checksum) != m.checksum]
    return pending, edited


def migrate(url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied_now: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            pending, edited = migration_status(applied_versions(conn))
            if edited:
                raise RuntimeError(f"migration {edited[0].version}_{edited[0].name} was edited after it ran")
            for mig in pending:
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.checksum),
                    )
                log.info("migration applied", version=mig.version, name=mig.name)
                applied_now.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied_now


def pending_migrations(url: str) -> list[Migration]:
    with psycopg.connect(url) as conn:
        return migration_status(applied_versions(conn))[0]


def cli(argv: list[str]) -> int:
    """`stocktrack migrate [--database-url URL] [--check]`."""
    from stocktrack_common.json_logging import configure_logging
    from stocktrack_common.settings import CommonSettings

    parser = argparse.ArgumentParser(prog="stocktrack migrate", description="apply database migrations")
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if migrations are pending, apply nothing"
    )
    args = parser.parse_args(argv)
    settings = CommonSettings()
    configure_logging("migrate", settings.log_level, settings.log_format)
    url = args.database_url or settings.database_url.get_secret_value()
    if args.check:
        pending = pending_migrations(url)
        for m in pending:
            print(f"pending: {m.version:04d}_{m.name}")
        return 1 if pending else 0
    applied = migrate(url)
    log.info("migrations complete", applied=applied)
    return 0
