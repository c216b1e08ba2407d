"""The simulator prices every watched symbol: one added through the API ticks within one reload."""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr

from fetcher.providers.registry import build_source
from fetcher.settings import FetcherSettings
from stocktrack_common.messages import Tick
from tests.api.conftest import ApiFactory, keys, make_api  # noqa: F401  (fixtures)

RELOAD_SECONDS = 0.5


async def test_a_symbol_added_through_the_api_is_priced_within_one_reload(
    make_api: ApiFactory,  # noqa: F811
    keys: dict[str, str],  # noqa: F811
    db_url: str,
) -> None:
    source = build_source(
        FetcherSettings(
            provider="sim",
            symbols=["AAPL"],
            database_url=SecretStr(db_url),
            watchlist_reload_seconds=RELOAD_SECONDS,
            sim_ticks_per_second=50,
        )
    )
    stop = asyncio.Event()
    seen: list[Tick] = []

    async def collect() -> None:
        async for batch in source.batches(stop):
            seen.extend(batch)

    task = asyncio.create_task(collect())
    try:
        async with asyncio.timeout(10):
            while not any(t.symbol == "AAPL" for t in seen):
                await asyncio.sleep(0.05)
        api = await make_api()
        response = await api.post("/v1/symbols", json={"symbol": "IBM"}, headers={"X-API-Key": keys["write"]})
        assert response.status == 201
        added = time.monotonic()
        async with asyncio.timeout(RELOAD_SECONDS + 5):
            while not any(t.symbol == "IBM" for t in seen):
                await asyncio.sleep(0.05)
        took = time.monotonic() - added
        print(f"first IBM tick {took:.2f}s after POST /v1/symbols (reload every {RELOAD_SECONDS}s)")
        assert took < RELOAD_SECONDS + 1.0  # one reload, plus a loaded machine's slack

        # Removed through the API: the simulator stops pricing it after the next reload.
        assert (await api.delete("/v1/symbols/IBM", headers={"X-API-Key": keys["write"]})).status == 204
        count = len(seen)
        async with asyncio.timeout(RELOAD_SECONDS + 5):
            while True:
                await asyncio.sleep(RELOAD_SECONDS)
                tail = seen[count:]
                if tail and not any(t.symbol == "IBM" for t in tail):
                    break
                count = len(seen)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
