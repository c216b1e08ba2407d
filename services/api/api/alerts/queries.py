"""SQL of the alert-rule endpoints; every value is a bound parameter."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

RULE_COLUMNS = "id, symbol, name, condition, target_type, target_url, enabled, created_by, created_at"


def _ms(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def rule_json(row: dict[str, Any]) -> dict[str, Any]:
    """A rule as clients see it: the target reduced to scheme and host (Slack URLs are credentials)."""
    parts = urlsplit(row["target_url"])
    return {
        "id": row["id"],
        "symbol": row["symbol"],
        "name": row["name"],
        "condition": row["condition"],
        "target": {"type": row["target_type"], "url": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"},
        "enabled": row["enabled"],
        "created_by": row["created_by"],
        "created_at": _ms(row["created_at"]),
    }


async def insert_rule(
    conn: AsyncConnection,
    *,
    rule_id: str,
    symbol: str,
    name: str | None,
    condition: dict[str, Any],
    target_type: str,
    target_url: str,
    secret: str | None,
    created_by: str | None,
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""INSERT INTO alert_rules (id, symbol, name, condition, target_type, target_url, secret, created_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {RULE_COLUMNS}""",
        (rule_id, symbol, name, Jsonb(condition), target_type, target_url, secret, created_by),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_rules(conn: AsyncConnection, symbol: str | None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE (%(symbol)s::text IS NULL OR symbol = %(symbol)s) "
        "ORDER BY created_at, id",
        {"symbol": symbol},
    )
    return await cur.fetchall()


async def get_rule(conn: AsyncConnection, rule_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = %s", (rule_id,))
    return await cur.fetchone()


async def update_rule(
    conn: AsyncConnection, rule_id: str, enabled: bool | None, name: str | None
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"""UPDATE alert_rules SET enabled = coalesce(%s, enabled), name = coalesce(%s, name)
            WHERE id = %s RETURNING {RULE_COLUMNS}""",
        (enabled, name, rule_id),
    )
    return await cur.fetchone()


async def delete_rule(conn: AsyncConnection, rule_id: str) -> bool:
    cur = await conn.execute("DELETE FROM alert_rules WHERE id = %s", (rule_id,))
    return cur.rowcount == 1


async def list_deliveries(
    conn: AsyncConnection, rule_id: str, status: str | None, limit: int
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT delivery_id, event_key, status, attempts, last_status_code, last_error, created_at,
                  finished_at, payload
           FROM alert_deliveries WHERE rule_id = %s AND (%s::text IS NULL OR status = %s)
           ORDER BY created_at DESC, event_key LIMIT %s""",
        (rule_id, status, status, limit),
    )
    rows = await cur.fetchall()
    for row in rows:
        row["created_at"] = _ms(row["created_at"])
        row["finished_at"] = _ms(row["finished_at"])
    return rows
