"""Rate limits (per address and per key), keys for reads when configured, CORS, request ids, metrics, CLI."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from api.access.auth import LIMITER, client_ip
from api.access.request_limits import decide
from api.settings import ApiSettings
from stocktrack_common.stream_names import latest_quotes_key
from tests.api.conftest import PEPPER, ApiFactory, assert_error, get_json


def test_sliding_window_decision() -> None:
    admitted = decide(True, current=10, previous=0, limit=10, elapsed=30)
    assert admitted.allowed and admitted.remaining == 0 and admitted.reset == 30
    # Full window, nothing before it: wait for the next window, then for 1/10 of it to fade.
    full = decide(False, current=10, previous=0, limit=10, elapsed=30)
    assert not full.allowed and full.retry_after == 30 + 6
    # Half of a full previous window still counts: 10 * 0.5 + 6 + 1 > 10; it fits once
    # 10 * (1 - t/60) + 7 <= 10, i.e. at t = 42 s: 12 s from now.
    weighted = decide(False, current=6, previous=10, limit=10, elapsed=30)
    assert not weighted.allowed and weighted.retry_after == 12
    assert weighted.headers()["Retry-After"] == "12" and weighted.headers()["RateLimit-Remaining"] == "0"


@pytest.mark.parametrize("elapsed", [0.0, 7.3, 29.9, 59.5])
@pytest.mark.parametrize(("current", "previous", "limit"), [(10, 0, 10), (6, 10, 10), (3, 50, 20), (1, 1, 1)])
def test_waiting_retry_after_always_fits(current: int, previous: int, limit: int, elapsed: float) -> None:
    """Simulate the window arithmetic the script applies: after Retry-After, the next request fits."""
    refused = decide(False, current, previous, limit, elapsed)
    later = elapsed + refused.retry_after
    if later >= 60:  # the next window: today's count becomes the fading one
        current, previous, later = 0, current, later - 60
    assert previous * (1 - later / 60) + current + 1 <= limit + 1e-9


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = ApiSettings(trusted_proxies="10.0.0.0/8").trusted_proxies
    assert client_ip("10.1.2.3", "203.0.113.9, 10.0.0.7", proxies) == "203.0.113.9"
    assert (
        client_ip("10.1.2.3", "198.51.100.1, 203.0.113.9", proxies) == "203.0.113.9"
    )  # leftmost is forgeable
    assert client_ip("192.0.2.1", "203.0.113.9", proxies) == "192.0.2.1"  # untrusted peer
    assert client_ip("10.1.2.3", "203.0.113.9", []) == "10.1.2.3"  # no proxies configured


async def test_rate_limits_answer_429_with_retry_after(make_api: ApiFactory, keys: dict[str, str]) -> None:
    api = await make_api(rate_limit_ip_per_minute=3, rate_limit_key_per_minute=5)
    for _ in range(3):
        assert (await api.get("/v1/symbols")).status == 200
    response = await api.get("/v1/symbols")
    assert_error(response.status, await response.json(), 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == "3" and response.headers["RateLimit-Remaining"] == "0"
    # Probes are never limited; a key has its own budget.
    assert (await api.get("/healthz")).status == 200
    headers = {"X-API-Key": keys["read"]}
    statuses = [(await api.get("/v1/symbols", headers=headers)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]


async def test_forwarded_address_gets_its_own_budget_behind_a_trusted_proxy(make_api: ApiFactory) -> None:
    api = await make_api(rate_limit_ip_per_minute=2, trusted_proxies="127.0.0.0/8")
    one, two = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    assert [(await api.get("/v1/symbols", headers=one)).status for _ in range(3)] == [200, 200, 429]
    assert (await api.get("/v1/symbols", headers=two)).status == 200


async def test_reads_can_require_a_key(make_api: ApiFactory, keys: dict[str, str]) -> None:
    api = await make_api(api_read_requires_key=True)
    assert_error(*await get_json(api, "/v1/symbols"), 401, "unauthorized")
    assert (await api.get("/v1/symbols", headers={"X-API-Key": keys["read"]})).status == 200
    assert (await api.get("/v1/symbols", headers={"X-API-Key": keys["write"]})).status == 200
    response = await api.get("/v1/symbols", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_error(response.status, await response.json(), 401, "unauthorized")
    assert (await api.get("/healthz")).status == 200 and (await api.get("/openapi.json")).status == 200


async def test_cors_request_id_and_metrics(make_api: ApiFactory) -> None:
    api = await make_api(cors_origins="https://app.example")
    preflight = await api.options(
        "/v1/symbols", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    response = await api.get(
        "/v1/quotes/NOPE/latest", headers={"Origin": "https://app.example", "X-Request-ID": "req-123"}
    )
    assert response.status == 404 and response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert response.headers["X-Request-ID"] == "req-123"
    other = await api.get("/v1/symbols", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers and other.headers["X-Request-ID"]

    metrics = await (await api.get("/metrics")).text()
    assert (
        'stocktrack_http_request_duration_seconds_count{method="GET",route="/v1/quotes/{symbol}/latest",'
        'service="api",status="404"}'
    ) in metrics
    assert (
        'stocktrack_http_errors_total{method="GET",route="/v1/quotes/{symbol}/latest",service="api",status="404"}'
        in metrics
    )


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url, "API_KEY_PEPPER": PEPPER}
    return subprocess.run(
        [sys.executable, "-m", "stocktrack_common.cli", "apikey", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("redis_client")
async def test_apikey_cli_create_list_revoke(db_url: str, make_api: ApiFactory) -> None:
    created = _cli(db_url, "create", "--name", "ci", "--scopes", "read,write")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["scopes"] == ["read", "write"] and key["key"].startswith(f"stk_{key['id']}_")
    listed = [json.loads(line) for line in _cli(db_url, "list").stdout.splitlines()]
    assert [(k["id"], k["revoked_at"]) for k in listed] == [(key["id"], None)]
    assert key["key"] not in _cli(db_url, "list").stdout

    api = await make_api()
    write = {"X-API-Key": key["key"]}
    assert (await api.post("/v1/symbols", json={"symbol": "IBM"}, headers=write)).status == 201
    assert _cli(db_url, "revoke", key["id"]).returncode == 0
    assert _cli(db_url, "revoke", key["id"]).returncode == 1
    assert (await api.post("/v1/symbols", json={"symbol": "IBM"}, headers=write)).status == 401
    assert _cli(db_url, "create", "--name", "x", "--scopes", "admin").returncode == 2


async def test_every_answer_carries_rate_limit_headers(make_api: ApiFactory) -> None:
    api = await make_api(rate_limit_ip_per_minute=5)
    first = await api.get("/v1/symbols")
    assert first.headers["RateLimit-Limit"] == "5"
    assert first.headers["RateLimit-Remaining"] == "4"
    assert 1 <= int(first.headers["RateLimit-Reset"]) <= 60
    assert first.headers["RateLimit-Policy"] == "5;w=60"
    missing = await api.get("/v1/quotes/NOPE/latest")
    assert missing.status == 404 and missing.headers["RateLimit-Remaining"] == "3"


async def test_refused_requests_do_not_extend_the_wait(make_api: ApiFactory, redis_url: str) -> None:
    """Hammering after a 429 changes nothing: the Retry-After of the first refusal still holds."""
    api = await make_api(rate_limit_ip_per_minute=2)
    assert [(await api.get("/v1/symbols")).status for _ in range(2)] == [200, 200]
    refusals = [await api.get("/v1/symbols") for _ in range(20)]
    assert {r.status for r in refusals} == {429}
    waits = [int(r.headers["Retry-After"]) for r in refusals]
    # Each later answer names the same moment (its wait shrinks as time passes; never grows).
    assert all(later <= earlier for earlier, later in itertools.pairwise(waits))


async def test_a_client_that_sleeps_retry_after_is_served(make_api: ApiFactory) -> None:
    """The promise of Retry-After, on the wall clock (a 2 s window keeps the test short)."""
    api = await make_api(rate_limit_ip_per_minute=3)
    api.server.app[LIMITER].window = 2
    for _ in range(5):
        statuses = []
        while True:
            response = await api.get("/v1/symbols")
            statuses.append(response.status)
            if response.status == 429:
                break
        wait = int(response.headers["Retry-After"])
        assert 1 <= wait <= 4
        await asyncio.sleep(wait)
        served = await api.get("/v1/symbols")
        assert served.status == 200, f"refused again after sleeping Retry-After={wait}"


async def test_a_latest_quote_costs_one_redis_command_with_its_rate_limit(
    make_api: ApiFactory, redis_client: aioredis.Redis, redis_url: str, prefix: str, keys: dict[str, str]
) -> None:
    """The cached quote is read by the rate-limit script's own call and served byte for byte."""
    api = await make_api(rate_limit_ip_per_minute=5, rate_limit_key_per_minute=5)
    quote = b'{"symbol":"AAPL","ts":1714570200000,"price":"190.25","size":100,"source":"sim"}'
    await redis_client.hset(latest_quotes_key(prefix), "AAPL", quote)
    watcher = aioredis.Redis.from_url(redis_url)
    try:
        async with watcher.monitor() as monitor:
            anonymous = await api.get("/v1/quotes/aapl/latest")
            keyed = await api.get("/v1/quotes/AAPL/latest", headers={"X-API-Key": keys["read"]})
            await redis_client.echo(f"{prefix}:end")
            commands = []  # what clients sent; MONITOR also lists what the scripts ran ("lua")
            while f"{prefix}:end" not in (seen := await monitor.next_command())["command"]:
                if prefix in seen["command"] and seen["client_type"] != "lua":
                    commands.append(seen["command"])
    finally:
        await watcher.aclose()
    for response in (anonymous, keyed):
        assert response.status == 200 and await response.read() == quote
        assert response.headers["RateLimit-Remaining"] == "4"
    assert len(commands) == 2, commands
    for command, bucket in zip(commands, ("{ip:127.0.0.1}", "{key:"), strict=True):
        name, _, nkeys, current, previous, quotes, *_, field = command.split()
        assert (name, nkeys, quotes, field) == ("EVALSHA", "3", latest_quotes_key(prefix), "AAPL")
        assert bucket in current and bucket in previous


async def test_the_rate_limit_script_is_loaded_again_when_redis_lost_it(make_api: ApiFactory) -> None:
    """After a Redis restart or failover the script is gone; the first request loads it again."""
    api = await make_api(rate_limit_ip_per_minute=5)
    limiter = api.server.app[LIMITER]
    loaded = limiter.script.sha
    limiter.script.sha = "0" * 40  # a script this Redis has never seen
    response = await api.get("/v1/quotes/NOPE/latest")
    assert response.status == 404 and response.headers["RateLimit-Remaining"] == "4"
    assert limiter.script.sha == loaded
    assert (await api.get("/v1/symbols")).headers["RateLimit-Remaining"] == "3"
