"""The deliveries table as an outbox: alerts are recorded once, then sent and retried from there.

Recording and sending are separate steps on purpose. The stream handler only inserts rows
(ON CONFLICT DO NOTHING on (rule, event)), so a redelivered signal or tick can never queue an
alert twice, and a slow or failing receiver never holds up stream consumption. The sender
claims due rows with a lease (FOR UPDATE SKIP LOCKED), so several senders never send the
same row at the same time, and a sender that dies mid-send leaves a row that is retried once
its lease expires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.evaluator import PendingAlert

INSERT_DELIVERY = """
INSERT INTO alert_deliveries (rule_id, event_key, delivery_id, payload)
SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = %s)
ON CONFLICT (rule_id, event_key) DO NOTHING
"""

CLAIM_DUE = """
WITH due AS (
    SELECT rule_id, event_key FROM alert_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE alert_deliveries d
SET lease_until = now() + make_interval(secs => %(lease)s), attempts = d.attempts + 1
FROM due, alert_rules r
WHERE d.rule_id = due.rule_id AND d.event_key = due.event_key AND r.id = d.rule_id
RETURNING d.rule_id, d.event_key, d.delivery_id, d.payload, d.attempts,
          r.target_type, r.target_url, r.secret, r.enabled
"""

MARK_DELIVERED = """
UPDATE alert_deliveries SET status = 'delivered', finished_at = now(), lease_until = NULL,
       last_status_code = %s, last_error = NULL
WHERE rule_id = %s AND event_key = %s
"""

MARK_RETRY = """
UPDATE alert_deliveries SET next_attempt_at = now() + make_interval(secs => %s), lease_until = NULL,
       last_status_code = %s, last_error = %s
WHERE rule_id = %s AND event_key = %s
"""

MARK_DEAD = """
UPDATE alert_deliveries SET status = 'dead', finished_at = now(), lease_until = NULL,
       last_status_code = %s, last_error = %s
WHERE rule_id = %s AND event_key = %s
"""


def delivery_id(rule_id: str, event_key: str) -> str:
    """Deterministic, so a receiver deduplicating on it sees one id per (rule, event) forever."""
    return hashlib.sha256(f"{rule_id}\x00{event_key}".encode()).hexdigest()[:32]


def payload_of(alert: PendingAlert) -> dict[str, Any]:
    rule = alert.rule
    return {
        "delivery_id": delivery_id(rule.id, alert.event_key),
        "rule_id": rule.id,
        "rule_name": rule.name,
        "symbol": rule.symbol,
        "condition": orjson.loads(rule.condition.model_dump_json()),
        "event_key": alert.event_key,
        "event": alert.event,
        "text": alert.text,
    }


async def record_alerts(conn: AsyncConnection, alerts: Sequence[PendingAlert]) -> int:
    """Queue alerts; returns how many were new (the rest had fired already, or lost their rule)."""
    if not alerts:
        return 0
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            INSERT_DELIVERY,
            [
                (a.rule.id, a.event_key, delivery_id(a.rule.id, a.event_key), Jsonb(payload_of(a)), a.rule.id)
                for a in alerts
            ],
        )
        return max(cur.rowcount, 0)


@dataclass(frozen=True)
class ClaimedDelivery:
    rule_id: str
    event_key: str
    delivery_id: str
    payload: dict[str, Any]
    attempts: int
    target_type: str
    target_url: str
    secret: str | None
    enabled: bool


async def claim_due(conn: AsyncConnection, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(CLAIM_DUE, {"limit": limit, "lease": lease_seconds})
    return [ClaimedDelivery(**row) for row in await cur.fetchall()]


async def mark_delivered(conn: AsyncConnection, item: ClaimedDelivery, status_code: int) -> None:
    await conn.execute(MARK_DELIVERED, (status_code, item.rule_id, item.event_key))


async def mark_retry(
    conn: AsyncConnection, item: ClaimedDelivery, delay_seconds: float, status_code: int | None, error: str
) -> None:
    await conn.execute(MARK_RETRY, (delay_seconds, status_code, error[:2000], item.rule_id, item.event_key))


async def mark_dead(
    conn: AsyncConnection, item: ClaimedDelivery, status_code: int | None, error: str
) -> None:
    await conn.execute(MARK_DEAD, (status_code, error[:2000], item.rule_id, item.event_key))
