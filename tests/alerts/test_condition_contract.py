"""The api accepts exactly the alert conditions the alerts worker can evaluate.

Every condition in a corpus of valid and boundary-breaking shapes goes through the real paths:
POST /v1/alerts (the api's JSON validation) -> `alert_rules.condition` in PostgreSQL -> the
worker's `load_rules`. A condition the api accepts must load and fire on events that cross it;
a condition the api refuses must be one the worker's parser refuses too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from alerts.condition_state import SymbolState
from alerts.evaluator import PendingAlert, evaluate_signal, evaluate_tick
from alerts.rule_book import AlertRule, RuleBook, load_rules, parse_rule
from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.alert_conditions import PriceCrossCondition, RsiCrossCondition, SignalCondition
from stocktrack_common.api_keys import create_key
from stocktrack_common.bars import MINUTE_MS
from stocktrack_common.messages import Signal, Tick

PEPPER = "condition-contract-pepper"
OMIT = object()
T0 = 1_700_000_040_000  # a minute boundary


def _shapes(kind: str, base: dict[str, Any], **candidates: list[Any]) -> Iterator[dict[str, Any]]:
    """`base`, then each candidate value of each field in turn with the others as in `base`."""
    yield {"type": kind, **base}
    for name, values in candidates.items():
        for value in values:
            shape = {"type": kind, **base, name: value}
            if value is OMIT:
                del shape[name]
            yield shape


DIRECTIONS = ["above", "below", "either", "sideways", None, OMIT]
CORPUS: list[Any] = [
    *_shapes(
        "price_cross",
        {"level": "150.5"},
        level=[
            150,
            150.25,
            "0.00000001",
            "0.000000001",  # nine decimal places: more than a stored price holds
            "123456789012.12345678",  # twenty digits
            "1234567890123.12345678",  # twenty-one
            "1E+3",
            "01",  # a leading zero: not the one written form
            0.30000000000000004,  # a float's noise past the 8th decimal is cut, not refused
            "0",
            "-1",
            "NaN",
            "Infinity",
            "abc",
            True,
            None,
            OMIT,
        ],
        direction=DIRECTIONS,
    ),
    *_shapes(
        "signal",
        {},
        actions=[
            ["buy"],
            ["buy", "sell", "hold"],
            ["sell", "sell"],
            ["buy", "sell", "hold", "buy"],
            [],
            ["moon"],
            "buy",
        ],
        source=[None, "rules", "model", "model:gbm-1.2_a", "model:", "model:x y", "sim", 7],
        min_confidence=[0, 0.5, 1, "0.25", 1.01, -0.1, None],
    ),
    *_shapes(
        "rsi_cross",
        {"threshold": 30},
        threshold=[0.5, "50", 99.5, 0, 100, -1, None, OMIT],
        direction=DIRECTIONS,
        period=[2, 200, 14.0, "14", 14.5, 1, 201, None],
    ),
    {"type": "volume_spike", "factor": 3},
    {"type": "price_cross", "level": "1", "colour": "red"},
    {"type": "signal", "actions": ["buy"], "extra": True},
    {"level": "1"},
    {},
    "price_cross",
    None,
    [],
]


@pytest_asyncio.fixture
async def client(redis_url: str, db_url: str, prefix: str) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    settings = ApiSettings(
        redis_url=SecretStr(redis_url),
        database_url=SecretStr(db_url),
        stream_prefix=prefix,
        api_key_pepper=SecretStr(PEPPER),
        rate_limit_ip_per_minute=0,
        rate_limit_key_per_minute=0,
        db_pool_min=1,
        db_pool_max=2,
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def test_the_api_accepts_exactly_what_the_worker_evaluates(client: TestClient, db_url: str) -> None:  # type: ignore[type-arg]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        _, key = await create_key(conn, "contract", ["write"], PEPPER)
    headers = {"Authorization": f"Bearer {key}"}

    accepted: dict[str, Any] = {}  # rule id -> the condition as the api echoed it
    refused: list[Any] = []
    for n, condition in enumerate(CORPUS):
        body = {
            "symbol": "AAPL",
            "name": f"c{n}",
            "condition": condition,
            "target": {"type": "slack", "url": "https://hooks.example.test/x"},
        }
        response = await client.post("/v1/alerts", json=body, headers=headers)
        assert response.status in (201, 422), await response.text()
        if response.status == 201:
            created = await response.json()
            accepted[created["id"]] = created["condition"]
        else:
            error = (await response.json())["error"]
            assert error["code"] == "validation_error" and error["details"], error
            refused.append(condition)

    # Both outcomes must be well represented, or the corpus proves nothing.
    assert len(accepted) >= 30 and len(refused) >= 40, (len(accepted), len(refused))

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        book = await load_rules(conn)
    loaded = {
        r.id: r
        for rules in (book.signal_rules, book.price_rules, book.rsi_rules)
        for r in rules.get("AAPL", [])
    }
    assert loaded.keys() == accepted.keys(), "the worker skipped rules the api accepted"
    for rule_id, rule in loaded.items():
        assert rule.condition.model_dump(mode="json") == accepted[rule_id]
        assert _fires_when_crossed(rule), rule.condition

    for condition in refused:
        raw = orjson.dumps(condition).decode()
        assert parse_rule(("alr_refused", "AAPL", None, raw)) is None, f"the worker would evaluate {raw}"


def _fires_when_crossed(rule: AlertRule) -> bool:
    """The rule fires on events that cross it, on the sides its direction asks for."""
    condition = rule.condition
    book = RuleBook.of([rule])
    if isinstance(condition, SignalCondition):
        source = condition.source or "rules"
        signal = Signal(
            symbol="AAPL",
            ts=T0,
            price=Decimal("100"),
            action=condition.actions[-1],
            confidence=condition.min_confidence,
            source="model:any" if source == "model" else source,
        )
        return len(evaluate_signal(book, signal)) == 1
    if isinstance(condition, PriceCrossCondition):
        level = condition.level
        prices = [level / 2, level * 2, level / 2]
    else:
        assert isinstance(condition, RsiCrossCondition)
        prices = _rsi_sweep(condition.period)
    state = SymbolState()
    fired: list[PendingAlert] = []
    for minute, price in enumerate(prices):
        tick = Tick(symbol="AAPL", ts=T0 + minute * MINUTE_MS, price=price, size=1, source="sim")
        fired += evaluate_tick(book, state, tick)
    sides = {str(alert.event["crossed"]) for alert in fired}
    return sides == ({"above", "below"} if condition.direction == "either" else {condition.direction})


def _rsi_sweep(period: int) -> list[Decimal]:
    """One close a minute taking RSI(period) from 0 up above 99.5 and back down below 0.5.

    Falling closes alone give RSI 0; a long run of rises 10000 times larger lifts it past
    99.5; a longer run of falls brings the decayed average gain under 0.5% of the losses.
    """
    price = Decimal(1000)
    closes = []
    for step, minutes in ((-1, 2 * period), (10_000, 3 * period), (-1_000, 8 * period)):
        for _ in range(minutes):
            price += step
            closes.append(price)
    return closes
