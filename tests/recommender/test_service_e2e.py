"""End to end: ticks on a shard stream -> recommender -> signals on the stream and (via the writer) in Postgres.

Covers cold start from bars_1m, both signal sources with reasons, restart from the checkpoint
without re-emitting, and hot reload of a newly activated model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import psycopg
import redis

from recommender.features import FEATURE_NAMES
from recommender.model_factory import make_pipeline
from recommender.model_registry import activate_model, announce_activation, new_model_id, save_model
from recommender.training import library_versions
from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import shard_for, signals_stream, tick_stream
from tests.support.processes import Services
from tests.support.waiting import wait_until

SYMBOL = "AAPL"
SHARDS = 2
START = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
HISTORY_BARS = 260


def insert_history(db_url: str) -> float:
    """1-minute bars before START, as the writer would have stored them; returns the last close."""
    rng = np.random.default_rng(3)
    closes = 100.0 + np.cumsum(rng.normal(0, 0.2, HISTORY_BARS))
    rows = []
    for i, close in enumerate(closes):
        bucket = START - timedelta(minutes=HISTORY_BARS - i)
        price = Decimal(f"{close:.4f}")
        rows.append(
            (
                SYMBOL,
                bucket,
                price,
                price + Decimal("0.05"),
                price - Decimal("0.05"),
                price,
                1000 + i,
                5,
                bucket,
                bucket + timedelta(seconds=59),
            )
        )
    with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, "
            "last_ts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return float(closes[-1])


def register_model(db_url: str, redis_url: str, prefix: str, seed: int) -> str:
    """A small real pipeline over the service's feature list, stored and activated through the registry."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, len(FEATURE_NAMES)))
    y = np.array(["sell", "hold", "buy"])[rng.integers(0, 3, 300)]
    pipeline = make_pipeline("logistic_regression").fit(x, y)
    model_id = new_model_id()
    with psycopg.connect(db_url, autocommit=True) as conn:
        save_model(
            conn,
            model_id=model_id,
            algorithm="logistic_regression",
            params={},
            library_versions=library_versions(),
            features=list(FEATURE_NAMES),
            label_spec={"horizon": 5},
            train_from=START.date(),
            train_to=START.date(),
            metrics={},
            pipeline=pipeline,
            interval="1m",  # runs on the service's 1-minute bars
        )
        activate_model(conn, model_id)
    client = redis.Redis.from_url(redis_url)
    try:
        announce_activation(client, prefix, model_id)
    finally:
        client.close()
    return model_id


def publish_ticks(client: redis.Redis, prefix: str, minutes: range, price: float) -> float:
    stream = tick_stream(prefix, shard_for(SYMBOL, SHARDS))
    rng = np.random.default_rng(minutes.start)
    for minute in minutes:
        for second in (5, 25, 45):
            price = max(1.0, price + float(rng.normal(0, 0.3)))
            ts = int((START + timedelta(minutes=minute, seconds=second)).timestamp() * 1000)
            tick = Tick(symbol=SYMBOL, ts=ts, price=Decimal(f"{price:.4f}"), size=100, source="test")
            client.xadd(stream, tick.to_fields())  # type: ignore[arg-type]
    return price


def read_signals(client: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    out = []
    for _, fields in client.xrange(signals_stream(prefix)):
        signal = {k.decode(): v.decode() for k, v in fields.items()}
        signal["reasons"] = orjson.loads(signal["reasons"])
        out.append(signal)
    return out


def test_ticks_become_signals_from_rules_and_model(
    services: Services, db_url: str, redis_url: str, prefix: str
) -> None:
    last_close = insert_history(db_url)
    first_model = register_model(db_url, redis_url, prefix, seed=1)
    env = {"TICK_SHARDS": str(SHARDS), "BAR_INTERVAL_SECONDS": "60", "RECOMMENDER_BLOCK_MS": "100"}
    services.start("writer", TICK_SHARDS=str(SHARDS), WRITER_BLOCK_MS="100").wait_healthy()
    recommender = services.start("recommender", name="recommender-0", **env)
    recommender.wait_healthy()
    client = redis.Redis.from_url(redis_url)
    try:
        price = publish_ticks(client, prefix, range(0, 6), last_close)
        wait_until(
            lambda: {s["source"] for s in read_signals(client, prefix)} >= {"rules", f"model:{first_model}"},
            30,
            "signals from both sources",
        )
        signals = read_signals(client, prefix)
        history_end_ms = int(START.timestamp() * 1000)
        for signal in signals:
            assert signal["symbol"] == SYMBOL and signal["action"] in {"buy", "sell", "hold"}
            assert int(signal["ts"]) >= history_end_ms  # warm-up bars are never published
            assert signal["reasons"]["bar"]["interval_ms"] == 60_000
        rules = [s for s in signals if s["source"] == "rules"]
        assert "rules" in rules[0]["reasons"] and rules[0]["reasons"]["indicators"]["rsi"] is not None
        # Cold start read the 260 stored bars: SMA(200) is defined from the first live bar on.
        assert rules[0]["reasons"]["indicators"]["sma_slow"] is not None
        model = [s for s in signals if s["source"].startswith("model:")]
        assert set(model[0]["reasons"]["probabilities"]) == {"buy", "hold", "sell"}
        assert set(model[0]["reasons"]["features"]) == set(FEATURE_NAMES)
        keys = {(s["ts"], s["source"]) for s in signals}
        assert len(keys) == len(signals)

        def persisted() -> set[tuple[str, str]]:
            with psycopg.connect(db_url) as conn:
                rows = conn.execute(
                    "SELECT (extract(epoch FROM ts) * 1000)::bigint::text, source FROM signals "
                    "WHERE symbol = %s",
                    (SYMBOL,),
                ).fetchall()
            return {(r[0], r[1]) for r in rows}

        wait_until(lambda: persisted() == keys, 30, "signals persisted by the writer")

        # Restart: the checkpoint restores the state; nothing already published is published again.
        assert recommender.terminate() == 0
        before = len(read_signals(client, prefix))
        restarted = services.start("recommender", name="recommender-0b", CONSUMER_NAME="recommender-0", **env)
        restarted.wait_healthy(path="/readyz")
        # Nothing is republished on start; that no old signal comes back later either is checked
        # below, after new ticks: their signals are all that follows `before`.
        assert len(read_signals(client, prefix)) == before
        last_ts = max(int(s["ts"]) for s in read_signals(client, prefix))

        # Hot reload: activating another model switches the model source without a restart.
        second_model = register_model(db_url, redis_url, prefix, seed=2)
        wait_until(
            lambda: "model loaded" in restarted.output() and second_model in restarted.output(),
            15,
            "the new model to load",
        )
        publish_ticks(client, prefix, range(6, 9), price)
        wait_until(
            lambda: any(s["source"] == f"model:{second_model}" for s in read_signals(client, prefix)),
            30,
            "a signal from the new model",
        )
        new = read_signals(client, prefix)[before:]
        assert all(int(s["ts"]) > last_ts for s in new)
        assert "symbol warmed up" not in restarted.output()
        assert restarted.terminate() == 0
    finally:
        client.close()
