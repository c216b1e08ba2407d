"""Daily models run on daily bars built live from ticks; each symbol gets the model of its scope."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import orjson
import psycopg
import redis.asyncio as aioredis
import structlog
from psycopg_pool import AsyncConnectionPool

from recommender.checkpoint import CheckpointStore
from recommender.features import FEATURE_NAMES
from recommender.model_factory import make_pipeline
from recommender.model_registry import LoadedModel, activate_model, new_model_id, save_model
from recommender.model_watcher import ModelWatcher
from recommender.processor import TickProcessor
from recommender.rules_config import RulesConfig
from recommender.symbol_state import DAY_MS
from recommender.training import library_versions
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import signals_stream

MINUTE = 60_000
DAY0 = 1_700_006_400_000 - 1_700_006_400_000 % DAY_MS  # a UTC midnight
CONFIG = RulesConfig()


def fitted(seed: int) -> LoadedModel:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, len(FEATURE_NAMES)))
    y = np.array(["sell", "hold", "buy"])[rng.integers(0, 3, 200)]
    pipeline = make_pipeline("logistic_regression").fit(x, y)
    return LoadedModel(f"m{seed}", pipeline, FEATURE_NAMES, {"horizon": 5})


def history(symbol_seed: int, days: int = 260) -> list[Bar]:
    rng = np.random.default_rng(symbol_seed)
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, days)))
    out = []
    for i, close in enumerate(closes):
        bucket = DAY0 - (days - i) * DAY_MS
        price = Decimal(f"{close:.4f}")
        out.append(
            Bar(
                bucket,
                price,
                price * Decimal("1.01"),
                price * Decimal("0.99"),
                price,
                10_000,
                1,
                bucket,
                bucket,
            )
        )
    return out


def ticks(symbol: str, start_ms: int, prices: list[float], first_seq: int) -> list[Delivery[Tick]]:
    out = []
    for i, price in enumerate(prices):
        ts = start_ms + i * MINUTE + 1_000
        tick = Tick(symbol=symbol, ts=ts, price=Decimal(str(price)), size=10, source="test")
        out.append(Delivery("s", f"{ts}-{first_seq + i}", tick))
    return out


def make_processor(client: aioredis.Redis, prefix: str, mode: str = "close") -> TickProcessor:
    seeds = {"AAA": 1, "BBB": 2}

    async def minute_warmup(symbol: str, before_ms: int) -> list[Bar]:
        return []

    async def daily_warmup(symbol: str, before_ms: int) -> list[Bar]:
        return [d for d in history(seeds[symbol]) if d.bucket < before_ms]

    return TickProcessor(
        redis=client,
        prefix=prefix,
        rules_config=CONFIG,
        interval_ms=MINUTE,
        checkpoints=CheckpointStore(client, prefix),
        warmup=minute_warmup,
        daily_warmup=daily_warmup,
        daily_signals=mode,  # type: ignore[arg-type]
    )


async def published(client: aioredis.Redis, prefix: str) -> list[dict[str, object]]:
    out = []
    for _, fields in await client.xrange(signals_stream(prefix)):
        signal: dict[str, object] = {k.decode(): v.decode() for k, v in fields.items()}
        signal["reasons"] = orjson.loads(str(signal["reasons"]))
        out.append(signal)
    return out


async def test_daily_models_signal_on_daily_bars_and_each_symbol_gets_its_own(
    redis_client: aioredis.Redis, prefix: str
) -> None:
    proc = make_processor(redis_client, prefix)
    aaa, bbb = fitted(1), fitted(2)
    proc.models = (
        LoadedModel(aaa.id, aaa.pipeline, FEATURE_NAMES, {}, interval="1d", scope="AAA"),
        LoadedModel(bbb.id, bbb.pipeline, FEATURE_NAMES, {}, interval="1d", scope="BBB"),
    )
    day_one = ticks("AAA", DAY0 + 14 * 3_600_000, [50.0, 50.5, 51.0, 50.8], 1) + ticks(
        "BBB", DAY0 + 14 * 3_600_000, [20.0, 19.5, 19.8], 100
    )
    await proc.handle(day_one)
    # Minute bars closed, but the day has not: no model signal yet.
    assert not [s for s in await published(redis_client, prefix) if str(s["source"]).startswith("model:")]
    next_day = DAY0 + DAY_MS + 14 * 3_600_000
    await proc.handle(ticks("AAA", next_day, [51.2], 10) + ticks("BBB", next_day, [19.9], 200))
    models = [s for s in await published(redis_client, prefix) if str(s["source"]).startswith("model:")]
    assert {(s["symbol"], s["source"]) for s in models} == {("AAA", "model:m1"), ("BBB", "model:m2")}
    for signal in models:
        reasons = signal["reasons"]
        assert isinstance(reasons, dict)
        assert int(str(signal["ts"])) == DAY0 and reasons["interval"] == "1d" and reasons["day"] == "closed"
        assert reasons["bar"]["interval_ms"] == DAY_MS and reasons["model_id"] in {"m1", "m2"}
    aaa_day = next(s for s in models if s["symbol"] == "AAA")["reasons"]
    assert isinstance(aaa_day, dict)
    assert (aaa_day["bar"]["open"], aaa_day["bar"]["close"], aaa_day["bar"]["high"]) == (
        "50.0",
        "50.8",
        "51.0",
    )
    rules = [s for s in await published(redis_client, prefix) if s["source"] == "rules"]
    assert all(isinstance(s["reasons"], dict) and s["reasons"]["interval"] == "1m" for s in rules)


async def test_update_mode_signals_on_the_forming_day(redis_client: aioredis.Redis, prefix: str) -> None:
    proc = make_processor(redis_client, prefix, mode="update")
    model = fitted(1)
    proc.models = (LoadedModel(model.id, model.pipeline, FEATURE_NAMES, {}, interval="1d", scope="*"),)
    await proc.handle(ticks("AAA", DAY0 + 14 * 3_600_000, [50.0, 52.0, 48.0, 55.0, 45.0], 1))
    models = [s for s in await published(redis_client, prefix) if str(s["source"]).startswith("model:")]
    assert models, "the forming day's verdict is published at the first closed rule bar"
    first = models[0]["reasons"]
    assert isinstance(first, dict) and first["day"] == "forming" and first["interval"] == "1d"
    assert int(str(models[0]["ts"])) == DAY0 + 14 * 3_600_000


async def test_the_watcher_refuses_a_model_of_another_interval(
    pg_pool: AsyncConnectionPool, db_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    rng = np.random.default_rng(0)
    pipeline = make_pipeline("logistic_regression").fit(
        rng.normal(size=(90, len(FEATURE_NAMES))), np.array(["sell", "hold", "buy"] * 30)
    )
    ids = {}
    with psycopg.connect(db_url, autocommit=True) as conn:
        for interval in ("1h", "1d"):
            ids[interval] = new_model_id()
            save_model(
                conn,
                model_id=ids[interval],
                algorithm="logistic_regression",
                params={},
                library_versions=library_versions(),
                features=list(FEATURE_NAMES),
                label_spec={},
                train_from=date(2020, 1, 1),
                train_to=date(2021, 1, 1),
                metrics={},
                pipeline=pipeline,
                interval=interval,
            )
            activate_model(conn, ids[interval])
    proc = make_processor(redis_client, prefix)
    watcher = ModelWatcher(redis=redis_client, pool=pg_pool, prefix=prefix, processor=proc)
    with structlog.testing.capture_logs() as logs:
        await watcher.reload()
    assert [m.id for m in proc.models] == [ids["1d"]]
    refused = [e for e in logs if e["event"] == "active model refused"]
    assert [e["model_id"] for e in refused] == [ids["1h"]]
    assert "trained on 1h bars, but this recommender builds 1m and 1d bars" in refused[0]["error"]
