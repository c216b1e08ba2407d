"""Hostile input against every api parameter: injection payloads get a 4xx JSON error, never a 5xx.

The endpoints and their parameters are read from the api's own /openapi.json, so an endpoint
added later is attacked too without touching this file. After the barrage every table still
exists with the rows it had: no payload reached SQL as code.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote

import psycopg
from aiohttp.test_utils import TestClient
from psycopg_pool import AsyncConnectionPool

from tests.api.conftest import T0, ApiFactory, insert_signals, insert_ticks

PAYLOADS = [
    "' OR '1'='1",
    "AAPL'; DROP TABLE ticks;--",
    "1; DELETE FROM signals",
    "1) UNION SELECT key_hash, id FROM api_keys--",
    '" OR 1=1 --',
    "$$; DROP TABLE api_keys; $$",
    "AAPL%27%20OR%201%3D1",
    "AAPL\x00",
    "../../../../etc/passwd",
    "1e309",
    "-1",
    "99999999999999999999999999",
    "2024-05-01T13:30:00Z' OR '1'='1",
    "A" * 5000,
    "\u202eLPAA",
    "eyJ0cyI6ICIxOyBEUk9QIFRBQkxFIHRpY2tzIiwgInNvdXJjZSI6ICJ4In0",  # base64 JSON cursor: {"ts": "1; DROP..."}
]
PROTECTED_TABLES = ["ticks", "bars_1m", "signals", "symbols", "api_keys", "models", "schema_migrations"]


def table_census(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        present = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        }
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in sorted(present)
            if not re.match(r"^ticks_\d{8}$", t)
        }


def example_value(schema: dict[str, Any]) -> str:
    """A valid value for a parameter, so only the attacked parameter is hostile."""
    if "examples" in schema:
        return (
            str(schema["examples"][0]).split(",")[0] if schema.get("pattern") else str(schema["examples"][0])
        )
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("type") == "integer":
        return str(schema.get("minimum", 1))
    if schema.get("type") == "boolean":
        return "false"
    candidates = ["AAPL", "alr_" + "0" * 16, "1", "m" * 8]
    pattern = schema.get("pattern")
    return next((c for c in candidates if pattern is None or re.search(pattern, c)), "AAPL")


def attacks(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, url, attacked parameter) for every payload in every path and query parameter."""
    out: list[tuple[str, str, str]] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in {"get", "delete", "post", "put", "patch"}:
                continue
            params = operation.get("parameters", [])
            path_values = {p["name"]: example_value(p.get("schema", {})) for p in params if p["in"] == "path"}
            for param in params:
                for payload in PAYLOADS:
                    values = {**path_values}
                    query = ""
                    if param["in"] == "path":
                        values[param["name"]] = payload
                    elif param["in"] == "query":
                        query = f"?{param['name']}={quote(payload, safe='')}"
                    else:
                        continue
                    url = path.format(**{k: quote(v, safe="") for k, v in values.items()}) + query
                    out.append((method.upper(), url, f"{param['in']}:{param['name']}"))
    return out


def body_attacks(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, body) with each top-level string field of each request body set to a payload."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    schemas = document.get("components", {}).get("schemas", {})
    for path, operations in document["paths"].items():
        if "{" in path:
            continue
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not content:
                continue
            ref = content["schema"].get("$ref", "")
            schema = schemas.get(ref.rsplit("/", 1)[-1], content["schema"])
            for name in schema.get("properties", {}):
                for payload in PAYLOADS:
                    out.append((method.upper(), path, {name: payload}))
    return out


async def test_injection_payloads_in_every_parameter_get_4xx_json_and_tables_survive(
    make_api: ApiFactory, keys: dict[str, str], pg_pool: AsyncConnectionPool, db_url: str
) -> None:
    await insert_ticks(
        pg_pool, [("AAPL", T0 + dt.timedelta(seconds=i), "101.5", 10, "sim") for i in range(5)]
    )
    await insert_signals(pg_pool, [("AAPL", T0, "rules", "buy", 0.5)])
    api: TestClient = await make_api(rate_limit_ip_per_minute=0, rate_limit_key_per_minute=0)
    before = table_census(db_url)
    document = await (await api.get("/openapi.json")).json()
    headers = {"X-API-Key": keys["write"]}
    requests = attacks(document)
    statuses: dict[int, int] = {}
    for method, url, where in requests:
        response = await api.request(method, url, headers=headers)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert response.status < 500, (
            f"{method} {url} ({where}) -> {response.status}: {await response.text()}"
        )
        if response.status >= 400:
            body = await response.json()
            assert set(body["error"]) == {"code", "message", "details"}, (method, url, body)
    after_params = table_census(db_url)
    assert after_params == before

    body_requests = body_attacks(document)
    for method, path, body in body_requests:
        response = await api.request(method, path, json=body, headers=headers)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert response.status < 500, f"{method} {path} {body} -> {response.status}"
        reply = await response.json()
        if response.status >= 300:
            assert "error" in reply
        else:
            # Accepted (e.g. '1e309' is a well-formed ticker): then it was stored as data, verbatim.
            ((field, value),) = body.items()
            assert str(reply[field]).upper() == value.upper(), (body, reply)
    after = table_census(db_url)
    print(
        f"\n{len(requests)} parameter attacks + {len(body_requests)} body attacks over"
        f" {len(document['paths'])} paths; statuses {dict(sorted(statuses.items()))}; tables {after}"
    )
    assert len(document["paths"]) >= 10
    assert set(PROTECTED_TABLES) <= set(after)
    untouched_by_bodies = {"ticks", "bars_1m", "signals", "api_keys", "models", "schema_migrations"}
    assert {t: after[t] for t in untouched_by_bodies} == {t: before[t] for t in untouched_by_bodies}


async def test_every_request_body_is_capped_with_413(make_api: ApiFactory, keys: dict[str, str]) -> None:
    api: TestClient = await make_api(api_max_body_bytes=4096)
    document = await (await api.get("/openapi.json")).json()
    targets = [
        (method.upper(), path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert targets, "no endpoint takes a body?"
    oversized = b'{"symbol": "' + b"A" * 10_000 + b'"}'
    for method, path, op in targets:
        url = path.format(
            **{
                p["name"]: example_value(p.get("schema", {}))
                for p in op.get("parameters", [])
                if p["in"] == "path"
            }
        )
        response = await api.request(
            method,
            url,
            data=oversized,
            headers={"X-API-Key": keys["write"], "Content-Type": "application/json"},
        )
        assert response.status == 413, (method, url, response.status)
        assert (await response.json())["error"]["code"] == "payload_too_large"
    print(f"\n413 on {len(targets)} body-taking endpoints: {[(m, p) for m, p, _ in targets]}")
