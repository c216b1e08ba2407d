"""The dashboard's pages, assets and endpoints through the real api app (no browser)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import psycopg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from api.app import create_app
from api.dashboard.routes import STATIC_DIR, session_start
from api.settings import ApiSettings
from stocktrack_common.settings import PoolSettings
from stocktrack_common.stream_names import latest_quotes_key
from tests.dashboard import seed


@pytest_asyncio.fixture
async def client(redis_url: str, db_url: str, prefix: str) -> AsyncIterator[TestClient]:
    settings = ApiSettings(
        redis_url=SecretStr(redis_url),
        database_url=SecretStr(db_url),
        stream_prefix=prefix,
        symbols=["AAPL", "MSFT"],
        dashboard_stream_url="",
        db=PoolSettings(pool_min=1, pool_max=2),
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def test_pages_and_vendored_chart_library_are_served(client: TestClient) -> None:
    for path, marker in (("/", 'id="watchlist"'), ("/models", 'id="models-table"')):
        response = await client.get(path)
        assert response.status == 200 and response.content_type == "text/html"
        assert marker in await response.text()
    library = await client.get(
        "/dashboard/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js"
    )
    assert library.status == 200
    assert "Lightweight Charts" in (await library.text())[:400]
    assert (
        (STATIC_DIR / "vendor" / "lightweight-charts" / "LICENSE").read_text().startswith(" " * 33 + "Apache")
    )
    config = await client.get("/dashboard/config.json")
    assert await config.json() == {"stream_url": ""}


def test_pages_load_nothing_from_other_hosts() -> None:
    """Offline by construction: no page or script of ours refers to an absolute URL."""
    ours = [
        p for p in STATIC_DIR.rglob("*") if p.suffix in {".html", ".js", ".css"} and "vendor" not in p.parts
    ]
    assert len(ours) >= 8
    for path in ours:
        text = path.read_text()
        assert not re.search(
            r"""(src|href)=["']https?://|import .* from ["']https?://|url\(["']?https?://""", text
        ), path


async def test_watch_list_summary(client: TestClient, db_url: str, redis_url: str, prefix: str) -> None:
    now = dt.datetime.now(dt.UTC)
    day, day_start = session_start(now)
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed.minute_bars(conn, "AAPL", 150, now, 101.0)
        seed.previous_close(conn, "AAPL", day - dt.timedelta(days=3), 95.5)
        conn.execute("INSERT INTO symbols (symbol, name) VALUES ('TSLA', 'Tesla, Inc.')")
        conn.execute(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
            " VALUES ('TSLA', %s, 200, 201, 199, 200.5, 10, 1, %s, %s)",
            (day_start + dt.timedelta(minutes=1),) * 3,
        )
    client_redis = aioredis.Redis.from_url(redis_url)
    quote = {
        "symbol": "AAPL",
        "ts": int(now.timestamp() * 1000),
        "price": "101.20",
        "size": 5,
        "source": "sim",
    }
    await client_redis.hset(latest_quotes_key(prefix), "AAPL", orjson.dumps(quote))
    await client_redis.aclose()

    response = await client.get("/v1/dashboard/watchlist")
    assert response.status == 200
    items = {i["symbol"]: i for i in (await response.json())["items"]}
    assert list(items) == ["AAPL", "MSFT", "TSLA"]
    aapl = items["AAPL"]
    assert aapl["last"] == quote
    assert len(aapl["sparkline"]) == 120 and aapl["sparkline"][-1] == pytest.approx(101.0, abs=1e-3)
    assert aapl["reference"] == "previous_close"
    with psycopg.connect(db_url) as conn:
        before_session = conn.execute(
            "SELECT close FROM bars_1m WHERE symbol = 'AAPL' AND bucket < %s ORDER BY bucket DESC LIMIT 1",
            (day_start,),
        ).fetchone()
    # The newest close before the session wins: a minute bar of the last session beats an older daily bar.
    expected = "95.5" if before_session is None else format(before_session[0], "f")
    assert aapl["reference_price"] == expected
    assert items["MSFT"] == {
        "symbol": "MSFT",
        "name": None,
        "last": None,
        "reference_price": None,
        "reference": "session_open",
        "sparkline": [],
    }
    assert items["TSLA"]["name"] == "Tesla, Inc."
    assert items["TSLA"]["reference"] == "session_open" and items["TSLA"]["reference_price"] == "200"


async def test_models_and_equity_chart(client: TestClient, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed.models(conn)
    body = await (await client.get("/v1/models")).json()
    ids = [m["id"] for m in body["items"]]
    assert ids == ["20240701T000000Z-bbbbbb", "20240101T000000Z-aaaaaa"]
    active, older = body["items"]
    assert active["active"] and active["has_equity_chart"] and not older["has_equity_chart"]
    assert "equity_chart_png" not in active["metrics"]
    assert active["metrics"]["evaluation"]["metrics"]["rules"]["balanced_accuracy"] == 0.38
    picture = await client.get(f"/v1/models/{active['id']}/equity.png")
    assert picture.status == 200 and picture.content_type == "image/png"
    assert await picture.read() == seed.tiny_png()
    missing = await client.get(f"/v1/models/{older['id']}/equity.png")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"


async def test_dashboard_endpoints_are_documented(client: TestClient) -> None:
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    for path in (
        "/v1/dashboard/watchlist",
        "/v1/models",
        "/v1/models/{model_id}/equity.png",
        "/v1/alerts",
        "/v1/alerts/{rule_id}",
        "/v1/alerts/{rule_id}/deliveries",
    ):
        assert path in paths, path


def test_session_starts_at_midnight_new_york() -> None:
    day, start = session_start(dt.datetime(2024, 3, 11, 3, 30, tzinfo=dt.UTC))
    assert day == dt.date(2024, 3, 10)
    assert start.astimezone(dt.UTC) == dt.datetime(2024, 3, 10, 5, 0, tzinfo=dt.UTC)
    assert base64.b64decode(base64.b64encode(seed.tiny_png()))[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(STATIC_DIR, "index.html").exists()
