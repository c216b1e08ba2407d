"""The first slice end to end: sim fetcher -> streams -> writer -> Postgres -> api, as subprocesses."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psycopg
import redis

from stocktrack_common.stream_names import tick_stream
from tests.support.processes import Services

SYMBOLS = "AAPL,MSFT,GOOG,NVDA"


def get_json(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_sim_ticks_reach_postgres_and_the_api(
    services: Services, redis_url: str, db_url: str, prefix: str
) -> None:
    env = {"SYMBOLS": SYMBOLS, "TICK_SHARDS": "2"}
    writer = services.start("writer", **env)
    api = services.start("api", **env)
    fetcher = services.start("fetcher", SIM_TICKS_PER_SECOND="400", **env)
    for proc in (writer, api, fetcher):
        proc.wait_healthy()
    time.sleep(8)
    assert fetcher.terminate() == 0

    client = redis.Redis.from_url(redis_url)
    published = sum(client.xlen(tick_stream(prefix, k)) for k in range(2))

    def drained() -> bool:
        groups = [g for k in range(2) for g in client.xinfo_groups(tick_stream(prefix, k))]
        return all(int(g["pending"]) == 0 and (g.get("lag") in (0, None)) for g in groups)

    deadline = time.monotonic() + 30
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (rows,) = conn.execute("SELECT count(*) FROM ticks").fetchone()  # type: ignore[misc]
            if rows >= published and drained():
                break
            time.sleep(0.2)
        (bars,) = conn.execute("SELECT count(*) FROM bars_1m").fetchone()  # type: ignore[misc]
        last_rows = {
            sym: (int(ts_ms), str(price))
            for sym, ts_ms, price in conn.execute(
                "SELECT DISTINCT ON (symbol) symbol, (extract(epoch FROM ts) * 1000)::bigint, price"
                " FROM ticks ORDER BY symbol, ts DESC"
            )
        }
    client.close()
    print(f"\npublished={published} persisted={rows} bars={bars}")
    assert published > 1000
    assert rows == published
    assert bars >= len(SYMBOLS.split(","))
    assert set(last_rows) == set(SYMBOLS.split(","))
    for symbol, (ts_ms, price) in last_rows.items():
        status, body = get_json(f"http://127.0.0.1:{api.port}/v1/quotes/{symbol}/latest")
        assert status == 200
        assert body["ts"] == ts_ms and body["price"] == price
    status, body = get_json(f"http://127.0.0.1:{api.port}/v1/quotes/ZZZZ/latest")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = get_json(f"http://127.0.0.1:{api.port}/v1/ticks/AAPL?limit=abc")
    assert status == 422 and body["error"]["code"] == "validation_error"
    status, body = get_json(f"http://127.0.0.1:{api.port}/v1/ticks/AAPL?limit=3")
    assert status == 200 and len(body["items"]) == 3 and body["next_cursor"]
