"""The symbols to fetch: SYMBOLS from the environment plus the active rows of the `symbols` table.

The table is re-read every `reload_seconds`, so a symbol added through the API is picked up
without a restart. If the database cannot be read, the previous list stays in force (and the
failure is logged and counted) rather than the fetcher stopping or dropping symbols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
import structlog

from fetcher.provider_metrics import WATCHLIST_RELOAD_FAILURES, WATCHLIST_SIZE
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.settings import parse_symbol_list

log = structlog.get_logger(__name__)

SymbolLoader = Callable[[], Awaitable[list[str]]]


def db_symbol_loader(database_url: str, timeout_seconds: float = 5.0) -> SymbolLoader:
    async def load() -> list[str]:
        async with await psycopg.AsyncConnection.connect(
            database_url, connect_timeout=max(1, int(timeout_seconds))
        ) as conn:
            cur = await conn.execute("SELECT symbol FROM symbols WHERE active ORDER BY symbol")
            rows = await cur.fetchall()
        return parse_symbol_list([row[0] for row in rows])

    return load


class WatchList:
    def __init__(
        self, static: list[str], loader: SymbolLoader | None = None, reload_seconds: float = 60.0
    ) -> None:
        self.static = list(static)
        self.loader = loader
        self.reload_seconds = reload_seconds
        self._dynamic: list[str] = []
        self.changed = asyncio.Event()
        WATCHLIST_SIZE.set(len(self.symbols))

    @property
    def symbols(self) -> list[str]:
        return self.static + [s for s in self._dynamic if s not in self.static]

    async def refresh(self) -> bool:
        """Re-read the table; True when the symbol set changed."""
        if self.loader is None:
            return False
        try:
            loaded = await self.loader()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            WATCHLIST_RELOAD_FAILURES.inc()
            log.warning("watch list reload failed; keeping the previous list", error=type(exc).__name__)
            return False
        before = set(self.symbols)
        self._dynamic = loaded
        after = set(self.symbols)
        WATCHLIST_SIZE.set(len(after))
        if before != after:
            log.info("watch list changed", added=sorted(after - before), removed=sorted(before - after))
            self.changed.set()
            return True
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Reload every `reload_seconds` until `stop` is set (the caller does the first load)."""
        while not stop.is_set():
            await sleep_or_stop(stop, self.reload_seconds)
            if not stop.is_set():
                await self.refresh()
