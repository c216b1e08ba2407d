"""/v1/scorecard fills from a replayed history: daily model signals and minute rule signals scored
once their horizon has passed, by the model's label rule, beside the model's training figures."""

from __future__ import annotations

import datetime as dt

import orjson
from aiohttp.test_utils import TestClient
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tests.api.conftest import T0, get_json, insert_bars

DAY0 = dt.date(2024, 1, 1)
CLOSES = [100.0, 101.0, 103.0, 99.0, 98.0, 104.0, 106.0, 100.0, 97.0, 95.0, 99.0, 102.0]


async def test_scorecard_scores_signals_whose_horizon_passed(
    api: TestClient,  # type: ignore[type-arg]
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        for i, close in enumerate(CLOSES):
            await conn.execute(
                "INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source)"
                " VALUES ('RPL', %s, %s, %s, %s, %s, %s, 1000, 'csv')",
                (DAY0 + dt.timedelta(days=i), close, close + 1, close - 1, close, close),
            )
        metrics = {
            "evaluation": {"metrics": {"model": {"balanced_accuracy": 0.41, "accuracy": 0.45}}},
            "backtest": {"strategies": {"model": {"sharpe": 0.9, "total_return": 0.3}}},
        }
        await conn.execute(
            "INSERT INTO models (id, algorithm, label_spec, metrics, artifact, bar_interval, scope)"
            " VALUES ('m1', 'logistic_regression', %s, %s, '\\x00', '1d', 'RPL')",
            (Jsonb({"horizon": 3, "buy_threshold": 0.02, "sell_threshold": -0.02}), Jsonb(metrics)),
        )
        # Daily model signals as the recommender publishes them (ts = the day's start), replayed.
        daily = [(0, "buy"), (1, "sell"), (4, "buy"), (6, "sell"), (7, "hold"), (10, "buy")]
        for day, action in daily:
            ts = dt.datetime.combine(DAY0 + dt.timedelta(days=day), dt.time(), tzinfo=dt.UTC)
            await conn.execute(
                "INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)"
                " VALUES ('RPL', %s, 'model:m1', %s, 0.6, %s, %s)",
                (ts, action, CLOSES[day], orjson.dumps({"interval": "1d", "model_id": "m1"}).decode()),
            )
    minute_closes = [50.0, 50.5, 51.0, 50.0, 49.0, 49.5, 52.0, 48.0]
    await insert_bars(pg_pool, "RPL", T0, minute_closes)
    async with pg_pool.connection() as conn:
        for minute, action in ((0, "buy"), (1, "sell"), (2, "buy"), (5, "sell")):
            await conn.execute(
                "INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)"
                " VALUES ('RPL', %s, 'rules', %s, 0.5, %s, '{\"interval\": \"1m\"}')",
                (T0 + dt.timedelta(minutes=minute), action, minute_closes[minute]),
            )

    status, body = await get_json(api, "/v1/scorecard", params={"symbol": "RPL"})
    assert status == 200
    lines = {(line["source"], line["interval"]): line for line in body["items"]}
    assert set(lines) == {("model:m1", "1d"), ("rules", "1m")}

    model = lines[("model:m1", "1d")]
    # horizon 3 days: day 0 buy 100 -> 99 (-1 %, miss); day 1 sell 101 -> 98 (-3 %, hit);
    # day 4 buy 98 -> 100 (+2.04 %, hit); day 6 sell 106 -> 95 (-10.4 %, hit); day 10 buy: pending.
    assert (model["scored"], model["pending"], model["hits"], model["horizon"]) == (4, 1, 3, 3)
    assert model["hit_rate"] == 0.75
    assert abs(model["avg_forward_return_buy"] - ((99 / 100 - 1) + (100 / 98 - 1)) / 2) < 1e-12
    assert abs(model["avg_forward_return_sell"] - ((98 / 101 - 1) + (95 / 106 - 1)) / 2) < 1e-12
    assert model["out_of_sample"] == {
        "balanced_accuracy": 0.41,
        "accuracy": 0.45,
        "backtest_sharpe": 0.9,
        "backtest_total_return": 0.3,
    }

    rules = lines[("rules", "1m")]
    # horizon 5 bars, direction only: minute 0 buy 50 -> 49.5 miss; 1 sell 50.5 -> 52 miss;
    # 2 buy 51 -> 48 miss; minute 5 sell: only 2 bars after it, pending.
    assert (rules["scored"], rules["pending"], rules["hits"], rules["hit_rate"]) == (3, 1, 0, 0.0)
    assert rules["out_of_sample"] is None

    status, body = await get_json(api, "/v1/scorecard", params={"symbol": "NONE"})
    assert status == 200 and body["items"] == []
