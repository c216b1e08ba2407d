"""The alert-rule endpoints of the api: write scope, validation, secrets shown once, deliveries listing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from api.app import create_app
from api.keys.store import create_key
from api.settings import ApiSettings
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
