"""The first slice end to end: sim fetcher -> streams -> writer -> Postgres -> api, as subprocesses."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import psycopg
import redis

from stocktrack_common.stream_names import tick_stream
from tests.support.processes import Services
from tests.support.waiting import wait_until

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
    client = redis.Redis.from_url(redis_url)

    def published() -> int:
        return sum(client.xlen(tick_stream(prefix, k)) for k in range(2))

    def stored(conn: psycopg.Connection) -> int:
        (rows,) = conn.execute("SELECT count(*) FROM ticks").fetchone()  # type: ignore[misc]
        return int(rows)

    def drained() -> bool:
        groups = [g for k in range(2) for g in client.xinfo_groups(tick_stream(prefix, k))]
        return all(int(g["pending"]) == 0 and (g.get("lag") in (0, None)) for g in groups)

    with psycopg.connect(db_url, autocommit=True) as conn:
        # The fetcher runs until the writer has been storing a stream of ticks, then stops.
        wait_until(lambda: published() > 1500 and stored(conn) > 0, 60, "ticks to flow into PostgreSQL")
        assert fetcher.terminate() == 0
        total = published()
        wait_until(lambda: stored(conn) >= total and drained(), 30, "the writer to store every tick")
        rows = stored(conn)
        (bars,) = conn.execute("SELECT count(*) FROM bars_1m").fetchone()  # type: ignore[misc]
        last_rows = {
            sym: (int(ts_ms), str(price))
            for sym, ts_ms, price in conn.execute(
                "SELECT DISTINCT ON (symbol) symbol, (extract(epoch FROM ts) * 1000)::bigint, price"
                " FROM ticks ORDER BY symbol, ts DESC"
            )
        }
    client.close()
    print(f"\npublished={total} persisted={rows} bars={bars}")
    assert total > 1000
    assert rows == total
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
