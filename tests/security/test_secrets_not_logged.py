"""A full stack run with real-looking secrets configured: none of them appears in any log line.

Secrets reach the services only through the environment (as Kubernetes Secrets do): provider API
keys, the API key pepper, and a DATABASE_URL whose role has a password. The run includes a start,
real traffic, a rejected API key, a database role error path and a graceful stop, and then every
line every service wrote is searched for every secret.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from stocktrack_common.api_keys import create_key
from tests.faults.harness import pipeline_env, row_count
from tests.support.processes import Services
from tests.support.waiting import wait_until


@pytest.fixture
def password_db_url(db_url: str) -> Iterator[tuple[str, str]]:
    """The test database through a role with a unique password; the role is dropped afterwards."""
    role = f"stsec_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        # Membership in the tables' owner lets the writer create tick partitions of the parent table.
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(conn.info.user), sql.Identifier(role)))
    parts = urlsplit(db_url)
    url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"))
    yield url, password
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


async def make_key(db_url: str, pepper: str) -> str:
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    try:
        _, key = await create_key(conn, "secrets-test", ["read"], pepper)
    finally:
        await conn.close()
    return key


def test_no_secret_reaches_any_log_line(
    password_db_url: tuple[str, str], services: Services, db_url: str, tmp_path: Path
) -> None:
    url_with_password, db_password = password_db_url
    secrets = {
        "ALPHAVANTAGE_API_KEY": f"av-{uuid.uuid4().hex}",
        "FINNHUB_API_KEY": f"fh-{uuid.uuid4().hex}",
        "ALPACA_API_KEY_ID": f"apk-{uuid.uuid4().hex}",
        "ALPACA_API_SECRET_KEY": f"aps-{uuid.uuid4().hex}",
        "API_KEY_PEPPER": f"pep-{uuid.uuid4().hex}",
    }
    env = pipeline_env(
        tmp_path, DATABASE_URL=url_with_password, SIM_TICKS_PER_SECOND="300", LOG_LEVEL="DEBUG", **secrets
    )
    procs = [services.start(m, name=f"{m}-0", **env) for m in ("writer", "recommender", "api", "streamer")]
    for proc in procs:
        proc.wait_healthy(60)
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    procs.append(fetcher)
    api_key = asyncio.run(make_key(db_url, secrets["API_KEY_PEPPER"]))
    wait_until(lambda: row_count(db_url, "ticks") > 300, 30, "ticks stored through the password role")
    api_port = procs[2].port
    assert get(f"http://127.0.0.1:{api_port}/v1/ticks/AAPL?limit=5", {"X-API-Key": api_key}) == 200
    wrong_key = api_key[:-6] + "ZZZZZZ"
    assert get(f"http://127.0.0.1:{api_port}/v1/symbols", {"Authorization": f"Bearer {wrong_key}"}) == 401
    # A refused login (unknown role) is retried and logged: the error must not carry the password.
    bad_url = url_with_password.replace(url_with_password.split("//", 1)[1].split(":", 1)[0], "nosuch_role")
    refused = services.start("writer", name="writer-refused", **{**env, "DATABASE_URL": bad_url})
    wait_until(lambda: "nosuch_role" in refused.output(), 20, "the refused login to be logged")
    refused.kill()
    for proc in procs:
        assert proc.terminate() == 0, proc.output()[-2000:]
    services.stop_all()

    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    assert {"writer-0.log", "recommender-0.log", "api-0.log", "streamer-0.log", "fetcher-0.log"} <= set(logs)
    needles = {
        **secrets,
        "database password": db_password,
        "api key": api_key,
        "rejected api key": wrong_key,
        "api key secret part": api_key.rsplit("_", 1)[1],
    }
    lines = sum(text.count("\n") for text in logs.values())
    found = [
        (name, what) for name, text in logs.items() for what, needle in needles.items() if needle in text
    ]
    print(f"\nsearched {lines} log lines in {len(logs)} files for {len(needles)} secrets: found {found}")
    assert lines > 20
    assert found == []
