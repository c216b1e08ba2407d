"""Latest quotes (Redis fast path and PostgreSQL fallback) and tick history with keyset cursors."""

from __future__ import annotations

import datetime as dt

import orjson
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.stream_names import latest_quotes_key
from tests.api.conftest import T0, assert_error, get_json, insert_ticks, ms

SECOND = dt.timedelta(seconds=1)


async def test_latest_quote_prefers_redis_then_falls_back_to_postgres(
    api: TestClient,
    pg_pool: AsyncConnectionPool,
    redis_client: aioredis.Redis,
    prefix: str,  # type: ignore[type-arg]
) -> None:
    await insert_ticks(
        pg_pool,
        [
            ("AAPL", T0, "190.10", 5, "sim"),
            ("AAPL", T0 + SECOND, "190.25", 7, "sim"),
            ("MSFT", T0, "410.00", 1, "sim"),
        ],
    )
    cached = {"symbol": "MSFT", "ts": ms(T0) + 5000, "price": "411.5", "size": 3, "source": "sim"}
    await redis_client.hset(latest_quotes_key(prefix), "MSFT", orjson.dumps(cached))

    status, body = await get_json(api, "/v1/quotes/aapl/latest")
    assert status == 200
    assert body == {"symbol": "AAPL", "ts": ms(T0 + SECOND), "price": "190.25", "size": 7, "source": "sim"}
    status, body = await get_json(api, "/v1/quotes/MSFT/latest")
    assert status == 200 and body == cached

    status, body = await get_json(api, "/v1/quotes/latest?symbols=MSFT,aapl,NOPE")
    assert status == 200
    assert body["quotes"]["MSFT"] == cached and body["quotes"]["AAPL"]["price"] == "190.25"
    assert body["missing"] == ["NOPE"]


async def test_quote_errors(api: TestClient) -> None:  # type: ignore[type-arg]
    assert_error(*await get_json(api, "/v1/quotes/ZZZZ/latest"), 404, "not_found")
    assert_error(*await get_json(api, "/v1/quotes/$$$/latest"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/quotes/latest"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/quotes/latest?symbols=A,,B"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/nothing/here"), 404, "not_found")
    response = await api.post("/v1/quotes/AAPL/latest")
    assert_error(response.status, await response.json(), 405, "method_not_allowed")


async def test_ticks_pages_are_complete_and_stable_under_concurrent_inserts(
    api: TestClient,
    pg_pool: AsyncConnectionPool,  # type: ignore[type-arg]
) -> None:
    await insert_ticks(pg_pool, [("AAPL", T0 + SECOND * i, f"{100 + i}.5", i, "sim") for i in range(25)])
    seen: list[int] = []
    status, page = await get_json(api, "/v1/ticks/AAPL?limit=10")
    assert status == 200 and len(page["items"]) == 10
    seen += [t["ts"] for t in page["items"]]
    # Rows land both behind the cursor (never shown: the page is past them) and ahead of it.
    await insert_ticks(
        pg_pool, [("AAPL", T0 + SECOND * 2, "1.0", 0, "late"), ("AAPL", T0 + SECOND * 30, "2.0", 0, "sim")]
    )
    while page["next_cursor"]:
        status, page = await get_json(api, f"/v1/ticks/AAPL?limit=10&cursor={page['next_cursor']}")
        assert status == 200
        seen += [t["ts"] for t in page["items"]]
    expected = [ms(T0 + SECOND * i) for i in range(25)] + [ms(T0 + SECOND * 30)]
    assert seen == expected  # in order, nothing twice, nothing skipped


async def test_ticks_time_range_accepts_iso_and_epoch_ms(
    api: TestClient,
    pg_pool: AsyncConnectionPool,  # type: ignore[type-arg]
) -> None:
    await insert_ticks(pg_pool, [("AAPL", T0 + SECOND * i, "100", 1, "sim") for i in range(10)])
    status, iso = await get_json(
        api, "/v1/ticks/AAPL", params={"from": "2024-05-01T13:30:02Z", "to": "2024-05-01T13:30:05+00:00"}
    )
    status2, epoch = await get_json(api, f"/v1/ticks/AAPL?from={ms(T0) + 2000}&to={ms(T0) + 5000}")
    assert status == status2 == 200
    assert [t["ts"] for t in iso["items"]] == [ms(T0) + k * 1000 for k in (2, 3, 4)]
    assert iso["items"] == epoch["items"] and iso["next_cursor"] is None


async def test_tick_errors(api: TestClient, pg_pool: AsyncConnectionPool) -> None:  # type: ignore[type-arg]
    await insert_ticks(pg_pool, [("AAPL", T0, "100", 1, "sim")])
    assert_error(*await get_json(api, "/v1/ticks/NOPE"), 404, "not_found")
    assert_error(*await get_json(api, "/v1/ticks/AAPL?limit=0"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/ticks/AAPL?limit=5001"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/ticks/AAPL?from=yesterday"), 422, "validation_error")
    assert_error(*await get_json(api, "/v1/ticks/AAPL?bogus=1"), 422, "validation_error")
    assert_error(
        *await get_json(api, "/v1/ticks/AAPL?cursor=bm90LWEtY3Vyc29yLWF0LWFsbC1yZWFsbHk"), 400, "bad_request"
    )
    status, body = await get_json(api, "/v1/ticks/AAPL?limit=abc")
    assert_error(status, body, 422)
    assert body["error"]["details"][0]["loc"] == ["limit"]
