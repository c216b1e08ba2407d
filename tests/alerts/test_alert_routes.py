"""The alert-rule endpoints of the api: write scope, validation, secrets shown once, deliveries listing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.api_keys import create_key
from stocktrack_common.settings import PoolSettings

PEPPER = "alert-route-tests-pepper"


@pytest_asyncio.fixture
async def client(redis_url: str, db_url: str, prefix: str) -> AsyncIterator[TestClient]:
    settings = ApiSettings(
        redis_url=SecretStr(redis_url),
        database_url=SecretStr(db_url),
        stream_prefix=prefix,
        api_key_pepper=SecretStr(PEPPER),
        db=PoolSettings(pool_min=1, pool_max=2),
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def make_key(db_url: str, scopes: list[str]) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        _, key = await create_key(conn, f"test-{'-'.join(scopes)}", scopes, PEPPER)
    return {"Authorization": f"Bearer {key}"}


RULE: dict[str, Any] = {
    "symbol": "aapl",
    "name": "dip buyer",
    "condition": {"type": "price_cross", "level": "150.5", "direction": "below"},
    "target": {"type": "webhook", "url": "https://hooks.example.test/path?token=abc"},
}


async def test_rules_need_the_write_scope(client: TestClient, db_url: str) -> None:
    assert (await client.get("/v1/alerts")).status == 401
    read_only = await make_key(db_url, ["read"])
    response = await client.post("/v1/alerts", json=RULE, headers=read_only)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


async def test_create_list_pause_and_delete_a_rule(client: TestClient, db_url: str) -> None:
    writer = await make_key(db_url, ["write"])
    response = await client.post("/v1/alerts", json=RULE, headers=writer)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["symbol"] == "AAPL" and created["enabled"] is True
    assert created["condition"] == {"type": "price_cross", "level": "150.5", "direction": "below"}
    assert created["target"] == {"type": "webhook", "url": "https://hooks.example.test"}
    assert len(created["secret"]) >= 32
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT secret, target_url FROM alert_rules WHERE id = %s", (created["id"],)
        ).fetchone()
    assert stored == (created["secret"], RULE["target"]["url"])

    listed = await (await client.get("/v1/alerts?symbol=AAPL", headers=writer)).json()
    assert [r["id"] for r in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]

    patched = await client.patch(f"/v1/alerts/{created['id']}", json={"enabled": False}, headers=writer)
    assert patched.status == 200 and (await patched.json())["enabled"] is False
    deliveries = await client.get(f"/v1/alerts/{created['id']}/deliveries", headers=writer)
    assert deliveries.status == 200 and (await deliveries.json())["items"] == []

    assert (await client.delete(f"/v1/alerts/{created['id']}", headers=writer)).status == 204
    assert (await client.get(f"/v1/alerts/{created['id']}", headers=writer)).status == 404


async def test_invalid_rules_are_rejected_with_details(client: TestClient, db_url: str) -> None:
    writer = await make_key(db_url, ["write"])
    bad_bodies = [
        {**RULE, "condition": {"type": "rsi_cross", "threshold": 140}},
        {**RULE, "condition": {"type": "signal", "actions": ["moon"]}},
        {**RULE, "condition": {"type": "price_cross", "level": "1", "colour": "red"}},
        {**RULE, "target": {"type": "webhook", "url": "ftp://example.test/x"}},
        {**RULE, "target": {"type": "slack", "url": "https://hooks.slack.test/T/B/x", "secret": "x" * 20}},
        {**RULE, "symbol": "not a symbol"},
    ]
    for body in bad_bodies:
        response = await client.post("/v1/alerts", json=body, headers=writer)
        assert response.status == 422, body
        assert (await response.json())["error"]["code"] == "validation_error"


async def test_slack_rule_and_signal_condition_defaults(client: TestClient, db_url: str) -> None:
    writer = await make_key(db_url, ["write"])
    body = {
        "symbol": "MSFT",
        "condition": {"type": "signal", "source": "model"},
        "target": {"type": "slack", "url": "https://hooks.slack.test/services/T/B/secretpart"},
    }
    response = await client.post("/v1/alerts", json=body, headers=writer)
    assert response.status == 201
    created = await response.json()
    assert created["secret"] is None
    assert created["condition"] == {
        "type": "signal",
        "actions": ["buy", "sell"],
        "source": "model",
        "min_confidence": 0.0,
    }
    assert created["target"]["url"] == "https://hooks.slack.test"


async def test_the_creating_key_is_recorded(client: TestClient, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row, key = await create_key(conn, "creator", ["write"], PEPPER)
    key_id = row.id
    response = await client.post("/v1/alerts", json=RULE, headers={"X-API-Key": key})
    assert response.status == 201, await response.text()
    created = await response.json()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT created_by FROM alert_rules WHERE id = %s", (created["id"],))
        assert await cur.fetchone() == (key_id,)
    assert created["created_by"] == key_id


async def test_rules_that_could_never_deliver_are_refused_at_creation(
    client: TestClient, db_url: str
) -> None:
    writer = await make_key(db_url, ["write"])
    for url in (
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hook",
    ):
        for kind in ("webhook", "slack"):
            response = await client.post(
                "/v1/alerts", json={**RULE, "target": {"type": kind, "url": url}}, headers=writer
            )
            body = await response.json()
            assert response.status == 422, (url, kind, body)
            assert "private networks" in body["error"]["message"]
    unknown = await client.post("/v1/alerts", json={**RULE, "symbol": "ZZZQ"}, headers=writer)
    body = await unknown.json()
    assert unknown.status == 422 and "unknown symbol ZZZQ" in body["error"]["message"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM alert_rules")
        assert await cur.fetchone() == (0,)


async def test_text_with_nul_or_control_characters_is_refused(client: TestClient, db_url: str) -> None:
    writer = await make_key(db_url, ["write"])
    for bad in ("\u00be\u0000", "line\nbreak", "bell\x07", "del\x7f"):
        symbol = await client.post(
            "/v1/symbols", json={"symbol": "Z7GBKMOC", "exchange": bad, "currency": "TKM"}, headers=writer
        )
        assert symbol.status == 422, await symbol.text()
        rule = await client.post("/v1/alerts", json={**RULE, "name": bad}, headers=writer)
        assert rule.status == 422, await rule.text()
    fine = await client.post(
        "/v1/symbols",
        json={"symbol": "Z7GBKMOC", "exchange": "\u00be NYSE", "currency": "TKM"},
        headers=writer,
    )
    assert fine.status in (200, 201), await fine.text()


async def test_a_target_port_out_of_range_is_a_validation_error(client: TestClient, db_url: str) -> None:
    writer = await make_key(db_url, ["write"])
    response = await client.post(
        "/v1/alerts",
        json={**RULE, "target": {"type": "webhook", "url": "https://example.com:70825/x"}},
        headers=writer,
    )
    assert response.status == 422, await response.text()
