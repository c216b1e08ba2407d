"""API keys at rest and in use: hashed, compared in constant time, scoped, and rate limited honestly."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import re
from pathlib import Path

import psycopg
import pytest
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

import api
import stocktrack_common.api_keys
from stocktrack_common.api_keys import KeyRefused, KeyVerifier, create_key, revoke_key
from tests.api.conftest import PEPPER, ApiFactory
from tests.support.waiting import wait_until_async

API_SOURCE = Path(api.__file__).parent


def test_keys_are_stored_only_as_a_keyed_hash(keys: dict[str, str], db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, key_hash, row_to_json(api_keys)::text FROM api_keys").fetchall()
    assert len(rows) == len(keys)
    hashes = {key_hash for _, key_hash, _ in rows}
    for key in keys.values():
        # stk_<id>_<secret>: the secret itself may contain "_", so split from the left.
        secret = key.split("_", 2)[2]
        assert len(secret) == 43
        assert all(secret not in whole_row for _, _, whole_row in rows), "a key's secret is stored in clear"
        assert hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest() in hashes
        assert hashlib.sha256(key.encode()).hexdigest() not in hashes, (
            "an unkeyed hash would be guessable offline"
        )


def test_key_comparison_is_constant_time() -> None:
    """Review-as-test: the one place a presented key is checked uses hmac.compare_digest."""
    assert "hmac.compare_digest(" in inspect.getsource(stocktrack_common.api_keys.key_matches)
    offenders = [
        f"{path.relative_to(API_SOURCE)}:{n}"
        for path in API_SOURCE.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"key_hash\s*[!=]=|[!=]=\s*\w*\.?key_hash\b", line)
    ]
    assert offenders == []


async def test_scopes_are_enforced_on_every_write_endpoint(
    make_api: ApiFactory, keys: dict[str, str]
) -> None:
    api: TestClient = await make_api()
    document = await (await api.get("/openapi.json")).json()
    writes = [
        (m.upper(), p)
        for p, ops in document["paths"].items()
        for m in ops
        if m in {"post", "put", "patch", "delete"}
    ]
    assert writes
    for method, path in writes:
        url = re.sub(r"\{symbol\}", "AAPL", re.sub(r"\{rule_id\}", "alr_" + "0" * 16, path))
        anonymous = await api.request(method, url, json={})
        assert anonymous.status == 401, (method, url, anonymous.status)
        read_only = await api.request(method, url, json={}, headers={"X-API-Key": keys["read"]})
        assert read_only.status == 403, (method, url, read_only.status)
        revoked = await api.request(
            method, url, json={}, headers={"Authorization": f"Bearer {keys['revoked']}"}
        )
        assert revoked.status == 401, (method, url, revoked.status)
        forged = keys["write"][:-4] + "AAAA"
        wrong = await api.request(method, url, json={}, headers={"X-API-Key": forged})
        assert wrong.status == 401, (method, url, wrong.status)
    created = await api.post("/v1/symbols", json={"symbol": "SCOPE"}, headers={"X-API-Key": keys["write"]})
    assert created.status == 201
    print(f"\nscopes checked on {len(writes)} write endpoints: {writes}")


SPOOFING_HEADERS = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "CF-Connecting-IP"]


async def test_rate_limit_ignores_spoofed_client_address_headers(make_api: ApiFactory) -> None:
    limit = 3

    def spoofed(i: int) -> dict[str, str]:
        return {h: f"203.0.113.{i}" if h != "Forwarded" else f"for=203.0.113.{i}" for h in SPOOFING_HEADERS}

    untrusting: TestClient = await make_api(rate_limit_ip_per_minute=limit)
    statuses = [(await untrusting.get("/v1/symbols", headers=spoofed(i))).status for i in range(limit + 3)]
    assert statuses == [200] * limit + [429] * 3, statuses
    # A proxy list that does not include the peer changes nothing: the budget of 127.0.0.1 (shared by all
    # replicas through Redis) is spent, whatever address the headers claim.
    other_proxy = await make_api(rate_limit_ip_per_minute=limit, trusted_proxies="10.0.0.0/8")
    assert [(await other_proxy.get("/v1/symbols", headers=spoofed(100 + i))).status for i in range(3)] == [
        429
    ] * 3
    # Only a configured proxy's X-Forwarded-For is believed: then each client has its own budget.
    behind_proxy = await make_api(rate_limit_ip_per_minute=limit, trusted_proxies="127.0.0.1/32")
    for i in range(limit + 3):
        assert (
            await behind_proxy.get("/v1/symbols", headers={"X-Forwarded-For": f"198.51.100.{i}"})
        ).status == 200


async def test_a_revoked_key_is_refused_once_its_cache_entry_expires(pg_pool: AsyncConnectionPool) -> None:
    """Keys are trusted for API_KEY_CACHE_SECONDS after a lookup: the bound on a revocation."""
    async with pg_pool.connection() as conn:
        row, key = await create_key(conn, "soon revoked", ["read"], PEPPER)
    verifier = KeyVerifier(pg_pool, PEPPER, cache_seconds=0.3)
    assert (await verifier.verify(key)).key_id == row.id
    async with pg_pool.connection() as conn:
        assert await revoke_key(conn, row.id)
    assert (await verifier.verify(key)).key_id == row.id  # still trusted from the cache

    async def refused() -> bool:
        try:
            await verifier.verify(key)
        except KeyRefused as refusal:
            return refusal.reason == "revoked"
        return False

    # The bound plus scheduling slack on a busy machine.
    await wait_until_async(refused, 0.3 + 1.0, "the revocation, within the cache's bound")


async def test_concurrent_requests_share_one_key_lookup(pg_pool: AsyncConnectionPool) -> None:
    """An expired entry of a busy key costs one database lookup, not one per waiting request."""
    async with pg_pool.connection() as conn:
        row, key = await create_key(conn, "busy", ["read"], PEPPER)
    verifier = KeyVerifier(pg_pool, PEPPER, cache_seconds=60)
    before = pg_pool.get_stats()["requests_num"]
    principals = await asyncio.gather(*(verifier.verify(key) for _ in range(20)))
    assert {p.key_id for p in principals} == {row.id}
    assert pg_pool.get_stats()["requests_num"] - before == 1
    with pytest.raises(KeyRefused, match="invalid"):
        wrong = key[:-1] + ("y" if key.endswith("x") else "x")
        await asyncio.gather(*(verifier.verify(wrong) for _ in range(5)))
    assert pg_pool.get_stats()["requests_num"] - before == 1  # same id: the cached row refuses it
