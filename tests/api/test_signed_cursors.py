"""Cursors are signed and bound to their query: edited, forged or reused elsewhere they are a 400."""

from __future__ import annotations

import base64
import datetime as dt

import orjson
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from tests.api.conftest import (
    T0,
    ApiFactory,
    assert_error,
    get_json,
    insert_bars,
    insert_signals,
    insert_ticks,
)

SECOND = dt.timedelta(seconds=1)


def edited(cursor: str) -> str:
    """The same cursor with one payload field moved, re-encoded as a client could."""
    mac, payload = cursor[:22], cursor[22:]
    values = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    key = next(iter(values))
    values[key] = values[key] - 1_000_000 if isinstance(values[key], int) else values[key] + "x"
    return mac + base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


async def first_cursor(api: TestClient, path: str) -> str:  # type: ignore[type-arg]
    status, page = await get_json(api, path)
    assert status == 200 and page["next_cursor"], page
    cursor: str = page["next_cursor"]
    # The cursor is honoured on its own query, with any page size.
    status, _ = await get_json(api, f"{path.replace('limit=2', 'limit=3')}&cursor={cursor}")
    assert status == 200
    return cursor


async def test_cursors_work_only_unchanged_and_on_their_own_query(
    make_api: ApiFactory, pg_pool: AsyncConnectionPool
) -> None:
    for symbol in ("AAPL", "MSFT"):
        await insert_ticks(pg_pool, [(symbol, T0 + SECOND * i, "100.5", i, "sim") for i in range(10)])
        await insert_bars(pg_pool, symbol, T0, [100.0 + i % 7 for i in range(30)])
        await insert_signals(pg_pool, [(symbol, T0 + SECOND * i, "rules", "buy", 0.7) for i in range(6)])
    api = await make_api(cursor_secret="one secret")

    ticks = await first_cursor(api, "/v1/ticks/AAPL?limit=2")
    bars = await first_cursor(api, "/v1/bars/AAPL?interval=1m&limit=2")
    indicators = await first_cursor(api, "/v1/indicators/AAPL?interval=1m&limit=2")
    signals = await first_cursor(api, "/v1/signals?symbol=AAPL&action=buy&limit=2")

    refused = [
        f"/v1/ticks/AAPL?cursor={edited(ticks)}",  # edited
        f"/v1/ticks/MSFT?cursor={ticks}",  # another symbol
        f"/v1/ticks/AAPL?from=2024-05-01T13:30:01Z&cursor={ticks}",  # another range
        f"/v1/bars/AAPL?interval=1m&cursor={edited(bars)}",
        f"/v1/bars/AAPL?interval=5m&cursor={bars}",  # another interval
        f"/v1/bars/MSFT?interval=1m&cursor={bars}",
        f"/v1/indicators/AAPL?interval=1m&cursor={bars}",  # another endpoint
        f"/v1/indicators/AAPL?interval=1m&rsi_period=5&cursor={indicators}",  # other parameters
        f"/v1/signals?symbol=AAPL&action=sell&cursor={signals}",  # another filter
        f"/v1/signals?symbol=MSFT&action=buy&cursor={signals}",
        f"/v1/signals?action=buy&cursor={signals}",
        f"/v1/signals?symbol=AAPL&action=buy&cursor={edited(signals)}",
        # An unsigned cursor of the old shape, and one that is all MAC.
        "/v1/ticks/AAPL?cursor=" + base64.urlsafe_b64encode(b'{"ts":1,"source":"sim"}').decode().rstrip("="),
        f"/v1/ticks/AAPL?cursor={ticks[:24]}",
    ]
    for path in refused:
        status, body = await get_json(api, path)
        assert_error(status, body, 400, "bad_request")
        assert body["error"]["details"][0]["loc"] == ["query", "cursor"], path

    # Another server secret: the cursor was not issued by this deployment.
    other = await make_api(cursor_secret="another secret")
    assert_error(*await get_json(other, f"/v1/ticks/AAPL?limit=2&cursor={ticks}"), 400, "bad_request")
    same = await make_api(cursor_secret="one secret")  # a replica with the same secret serves it
    assert (await get_json(same, f"/v1/ticks/AAPL?limit=2&cursor={ticks}"))[0] == 200


async def test_an_empty_or_inverted_range_is_an_empty_page(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    await insert_ticks(pg_pool, [("AAPL", T0 + SECOND * i, "100.5", i, "sim") for i in range(5)])
    await insert_bars(pg_pool, "AAPL", T0, [100.0 + i for i in range(5)])
    await insert_signals(pg_pool, [("AAPL", T0 + SECOND * i, "rules", "buy", 0.7) for i in range(5)])
    at, later = "2024-05-01T13:30:02Z", "2024-05-01T13:31:00Z"
    for start, end in ((at, at), (later, at)):
        for path in ("/v1/ticks/AAPL", "/v1/bars/AAPL", "/v1/indicators/AAPL", "/v1/signals"):
            status, body = await get_json(api, f"{path}?from={start}&to={end}")
            assert status == 200 and body["items"] == [] and body["next_cursor"] is None, (path, body)
        status, body = await get_json(api, f"/v1/scorecard?from={start}&to={end}")
        assert status == 200, body
    assert_error(*await get_json(api, f"/v1/ticks/NOPE?from={at}&to={at}"), 404)
