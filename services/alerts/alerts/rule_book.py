"""The enabled alert rules, loaded from PostgreSQL and indexed by symbol for the hot path."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from psycopg import AsyncConnection
from pydantic import ValidationError

from stocktrack_common.alert_conditions import (
    CONDITION_ADAPTER,
    PriceCrossCondition,
    RsiCrossCondition,
    SignalCondition,
)

log = structlog.get_logger(__name__)

SELECT_RULES = "SELECT id, symbol, name, condition FROM alert_rules WHERE enabled ORDER BY id"


@dataclass(frozen=True)
class AlertRule:
    id: str
    symbol: str
    name: str | None
    condition: SignalCondition | PriceCrossCondition | RsiCrossCondition


@dataclass
class RuleBook:
    """Rules grouped by symbol and kind, so a tick of an unwatched symbol costs one dict lookup."""

    signal_rules: dict[str, list[AlertRule]] = field(default_factory=dict)
    price_rules: dict[str, list[AlertRule]] = field(default_factory=dict)
    rsi_rules: dict[str, list[AlertRule]] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Iterable[AlertRule]) -> RuleBook:
        book = cls()
        for rule in rules:
            if isinstance(rule.condition, SignalCondition):
                target = book.signal_rules
            elif isinstance(rule.condition, PriceCrossCondition):
                target = book.price_rules
            else:
                target = book.rsi_rules
            target.setdefault(rule.symbol, []).append(rule)
        return book

    def watches_ticks_of(self, symbol: str) -> bool:
        return symbol in self.price_rules or symbol in self.rsi_rules

    def rsi_periods(self, symbol: str) -> set[int]:
        return {
            r.condition.period
            for r in self.rsi_rules.get(symbol, ())
            if isinstance(r.condition, RsiCrossCondition)
        }


def parse_rule(row: tuple[Any, ...]) -> AlertRule | None:
    rule_id, symbol, name, condition = row
    raw = orjson.loads(condition) if isinstance(condition, (str, bytes)) else condition
    try:
        parsed = CONDITION_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        log.warning("skipping alert rule with an invalid condition", rule_id=rule_id, error=str(exc)[:500])
        return None
    return AlertRule(id=rule_id, symbol=symbol, name=name, condition=parsed)


async def load_rules(conn: AsyncConnection) -> RuleBook:
    cur = await conn.execute(SELECT_RULES)
    rules = [r for r in (parse_rule(row) for row in await cur.fetchall()) if r is not None]
    return RuleBook.of(rules)


class RuleCache:
    """Reloads the rule book at most every `refresh_seconds`; rules change rarely, ticks constantly."""

    def __init__(self, pool: Any, refresh_seconds: float) -> None:
        self.pool = pool
        self.refresh_seconds = refresh_seconds
        self.book = RuleBook()
        self.loaded_at: float | None = None

    async def current(self) -> RuleBook:
        now = time.monotonic()
        if self.loaded_at is None or now - self.loaded_at >= self.refresh_seconds:
            async with self.pool.connection() as conn:
                self.book = await load_rules(conn)
            self.loaded_at = now
        return self.book
