"""Signals (latest, filtered list, cursor) and the watch list with write-scoped keys."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from tests.api.conftest import T0, ApiFactory, assert_error, get_json, insert_signals, ms

SECOND = dt.timedelta(seconds=1)


async def test_latest_signal_and_filtered_pages(api: TestClient, pg_pool: AsyncConnectionPool) -> None:  # type: ignore[type-arg]
    rows = [
        ("AAPL" if i % 2 else "MSFT", T0 + SECOND * i, "rules", ("buy", "sell", "hold")[i % 3], 0.5)
        for i in range(30)
    ]
    await insert_signals(pg_pool, rows)
    status, body = await get_json(api, "/v1/signals/aapl/latest")
    assert status == 200
    assert body == {
        "symbol": "AAPL",
        "ts": ms(T0 + SECOND * 29),
        "source": "rules",
        "action": "hold",
        "confidence": 0.5,
        "price": "100.5",
        "reasons": {"rsi": 25.0},
    }

    collected: list[tuple[str, int]] = []
    url = "/v1/signals?symbol=AAPL&action=buy&limit=2"
    while url:
        status, page = await get_json(api, url)
        assert status == 200
        collected += [(s["symbol"], s["ts"]) for s in page["items"]]
        assert all(s["action"] == "buy" for s in page["items"])
        url = (
            f"/v1/signals?symbol=AAPL&action=buy&limit=2&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    expected = [(s, ms(ts)) for s, ts, _, action, _ in rows if s == "AAPL" and action == "buy"]
    assert collected == expected and len(expected) == 5

    status, body = await get_json(api, f"/v1/signals?from={ms(T0 + SECOND * 10)}&to={ms(T0 + SECOND * 13)}")
    assert [s["ts"] for s in body["items"]] == [ms(T0 + SECOND * i) for i in (10, 11, 12)]


async def test_signal_errors(api: TestClient) -> None:  # type: ignore[type-arg]
    assert_error(*await get_json(api, "/v1/signals/AAPL/latest"), 404, "not_found")
    assert_error(*await get_json(api, "/v1/signals?action=maybe"), 422, "validation_error")
    assert_error(
        *await get_json(api, "/v1/signals?cursor=eyJ0cyI6MSwic3ltYm9sIjoiQUFQTCIsInNvdXJjZSI6InJ1bGVzIn0"),
        400,
        "bad_request",
    )
    status, body = await get_json(api, "/v1/signals")
    assert status == 200 and body == {"items": [], "next_cursor": None}


async def test_watch_list_changes_need_a_write_key(api: TestClient, keys: dict[str, str]) -> None:  # type: ignore[type-arg]
    new = {"symbol": "tsla", "name": "Tesla", "exchange": "NASDAQ"}
    response = await api.post("/v1/symbols", json=new)
    assert_error(response.status, await response.json(), 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await api.post("/v1/symbols", json=new, headers={"X-API-Key": keys["read"]})
    assert_error(response.status, await response.json(), 403, "forbidden")
    response = await api.post("/v1/symbols", json=new, headers={"Authorization": f"Bearer {keys['revoked']}"})
    assert_error(response.status, await response.json(), 401, "unauthorized")
    response = await api.post(
        "/v1/symbols", json=new, headers={"Authorization": "Bearer stk_000000000000_" + "x" * 43}
    )
    assert_error(response.status, await response.json(), 401, "unauthorized")

    write = {"Authorization": f"Bearer {keys['write']}"}
    response = await api.post("/v1/symbols", json=new, headers=write)
    created = await response.json()
    assert response.status == 201 and created["symbol"] == "TSLA" and created["active"] is True
    response = await api.post("/v1/symbols", json={"symbol": "TSLA"}, headers={"X-API-Key": keys["write"]})
    assert response.status == 200 and (await response.json())["name"] == "Tesla"

    status, body = await get_json(api, "/v1/symbols")
    assert status == 200 and [s["symbol"] for s in body["items"]] == ["TSLA"]
    response = await api.delete("/v1/symbols/tsla", headers=write)
    assert response.status == 204
    status, body = await get_json(api, "/v1/symbols")
    assert body["items"] == []
    status, body = await get_json(api, "/v1/symbols?include_inactive=true")
    assert [(s["symbol"], s["active"]) for s in body["items"]] == [("TSLA", False)]
    response = await api.delete("/v1/symbols/TSLA", headers=write)
    assert_error(response.status, await response.json(), 404, "not_found")
    response = await api.delete("/v1/symbols/TSLA")
    assert_error(response.status, await response.json(), 401, "unauthorized")


async def test_watch_list_body_errors(api: TestClient, keys: dict[str, str]) -> None:  # type: ignore[type-arg]
    write = {"X-API-Key": keys["write"]}
    response = await api.post(
        "/v1/symbols", data=b"{not json", headers={**write, "Content-Type": "application/json"}
    )
    assert_error(response.status, await response.json(), 400, "bad_request")
    response = await api.post(
        "/v1/symbols", data=b"symbol=X", headers={**write, "Content-Type": "text/plain"}
    )
    assert_error(response.status, await response.json(), 415, "unsupported_media_type")
    response = await api.post("/v1/symbols", json={"symbol": "bad symbol!"}, headers=write)
    assert_error(response.status, await response.json(), 422, "validation_error")
    response = await api.post("/v1/symbols", json={"symbol": "X", "extra": 1}, headers=write)
    assert_error(response.status, await response.json(), 422, "validation_error")
    response = await api.post("/v1/symbols", json={"symbol": "X", "name": "n" * 100_000}, headers=write)
    assert_error(response.status, await response.json(), 413, "payload_too_large")


async def test_watch_list_lists_configured_and_added_symbols_with_their_origin(
    make_api: ApiFactory, keys: dict[str, str]
) -> None:
    api = await make_api(symbols=["AAPL", "MSFT"])
    write = {"X-API-Key": keys["write"]}
    status, body = await get_json(api, "/v1/symbols")  # a fresh deployment: what SYMBOLS tracks
    assert status == 200
    assert [(s["symbol"], s["origin"], s["active"], s["added_at"]) for s in body["items"]] == [
        ("AAPL", "config", True, None),
        ("MSFT", "config", True, None),
    ]
    response = await api.post("/v1/symbols", json={"symbol": "ibm", "name": "IBM"}, headers=write)
    added = await response.json()
    assert response.status == 201 and added["origin"] == "api" and isinstance(added["added_at"], int)
    response = await api.post("/v1/symbols", json={"symbol": "MSFT", "name": "Microsoft"}, headers=write)
    assert response.status == 201 and (await response.json())["origin"] == "config"
    status, body = await get_json(api, "/v1/symbols")
    assert [(s["symbol"], s["origin"], s["name"]) for s in body["items"]] == [
        ("AAPL", "config", None),
        ("IBM", "api", "IBM"),
        ("MSFT", "config", "Microsoft"),
    ]
    response = await api.delete("/v1/symbols/AAPL", headers=write)
    assert_error(response.status, await response.json(), 409, "conflict")
    assert (await api.delete("/v1/symbols/IBM", headers=write)).status == 204
    status, body = await get_json(api, "/v1/symbols")
    assert [s["symbol"] for s in body["items"]] == ["AAPL", "MSFT"]


async def test_an_empty_or_second_different_key_is_refused(api: TestClient, keys: dict[str, str]) -> None:  # type: ignore[type-arg]
    body = {"symbol": "IBM"}
    good = keys["write"]
    for headers in (
        {"X-API-Key": good, "Authorization": ""},  # an empty Authorization is not "no key"
        {"X-API-Key": good, "Authorization": f"Bearer {keys['read']}"},  # two different keys
    ):
        response = await api.post("/v1/symbols", json=body, headers=headers)
        assert_error(response.status, await response.json(), 401, "unauthorized")
    response = await api.post(
        "/v1/symbols", json=body, headers={"X-API-Key": good, "Authorization": f"Bearer {good}"}
    )
    assert response.status == 201
