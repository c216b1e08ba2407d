"""Migration 0007: price levels stored in exponent form keep working once only plain ones validate."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from alerts.rule_book import load_rules
from stocktrack_common.alert_conditions import PriceCrossCondition
from stocktrack_common.migrations import load_migrations

# What pydantic's default Decimal serialisation stored before the level had one written form.
STORED = {"r-exp-up": "1E+3", "r-exp-down": "1E-7", "r-plain": "150.25"}


async def test_exponent_levels_are_rewritten_and_load_again(db_url: str) -> None:
    (migration,) = [m for m in load_migrations() if m.name == "alert_levels_plain"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for rule_id, level in STORED.items():
            conn.execute(
                "INSERT INTO alert_rules (id, symbol, condition, target_type, target_url) VALUES (%s, %s, %s, %s, %s)",
                (
                    rule_id,
                    "AAPL",
                    Jsonb({"type": "price_cross", "level": level, "direction": "above"}),
                    "slack",
                    "https://hooks.example.test/x",
                ),
            )
        conn.execute(
            "INSERT INTO alert_rules (id, symbol, condition, target_type, target_url) VALUES (%s, %s, %s, %s, %s)",
            ("r-signal", "AAPL", Jsonb({"type": "signal"}), "slack", "https://hooks.example.test/x"),
        )
        conn.execute(migration.sql.encode())
        conn.execute(migration.sql.encode())  # a second run changes nothing
        rows = dict(conn.execute("SELECT id, condition FROM alert_rules").fetchall())
    assert {k: rows[k]["level"] for k in STORED} == {
        "r-exp-up": "1000",
        "r-exp-down": "0.0000001",
        "r-plain": "150.25",
    }
    assert rows["r-signal"] == {"type": "signal"}

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        book = await load_rules(conn)
    levels = {
        rule.id: rule.condition.level
        for rule in book.price_rules.get("AAPL", [])
        if isinstance(rule.condition, PriceCrossCondition)
    }
    assert levels == {
        "r-exp-up": Decimal("1000"),
        "r-exp-down": Decimal("0.0000001"),
        "r-plain": Decimal("150.25"),
    }
