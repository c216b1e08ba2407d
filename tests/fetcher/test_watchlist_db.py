"""The watch list follows the `symbols` table without a restart and survives a database outage."""

from __future__ import annotations

import psycopg

from fetcher.watchlist import WatchList, db_symbol_loader
from tests.fetcher.conftest import metric


async def test_table_changes_are_picked_up(db_url: str) -> None:
    watchlist = WatchList(["AAPL"], db_symbol_loader(db_url), reload_seconds=60)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) VALUES ('MSFT'), ('AAPL'), ('TSLA')")
    assert await watchlist.refresh()
    assert watchlist.symbols == ["AAPL", "MSFT", "TSLA"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE symbols SET active = false WHERE symbol = 'TSLA'")
        conn.execute("DELETE FROM symbols WHERE symbol = 'AAPL'")
    assert await watchlist.refresh()
    assert watchlist.symbols == ["AAPL", "MSFT"]  # AAPL stays: it comes from SYMBOLS too
    assert not await watchlist.refresh()


async def test_unreachable_database_keeps_the_previous_list(db_url: str) -> None:
    failures = metric("stocktrack_fetcher_watchlist_reload_failures_total")
    watchlist = WatchList(["AAPL"], db_symbol_loader("postgresql://postgres@127.0.0.1:9/nowhere"))
    assert not await watchlist.refresh()
    assert watchlist.symbols == ["AAPL"]
    assert metric("stocktrack_fetcher_watchlist_reload_failures_total") == failures + 1
