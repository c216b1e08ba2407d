"""The alerts worker as a subprocess against a real loopback receiver, Redis and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any, Literal

import orjson
import psycopg
import redis
from psycopg.types.json import Jsonb

from alerts.webhook_request import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from stocktrack_common.messages import Signal, Tick
from stocktrack_common.stream_names import shard_for, signals_stream, tick_stream, tick_streams
from tests.alerts.receiver import Receiver, running_receiver
from tests.support.processes import Services
from tests.support.waiting import wait_until

Action = Literal["buy", "sell", "hold"]
SECRET = "test-signing-secret"
SHARDS = 2
WORKER_ENV = {
    "TICK_SHARDS": str(SHARDS),
    "ALERTS_RETRY_BASE_SECONDS": "0.2",
    "ALERTS_RETRY_MAX_SECONDS": "1",
    "ALERTS_MAX_ATTEMPTS": "3",
    "ALERTS_SENDER_POLL_SECONDS": "0.1",
    "ALERTS_BLOCK_MS": "100",
    # The test receiver listens on loopback, which the worker refuses by default.
    "ALERTS_ALLOW_PRIVATE_TARGETS": "true",
    "ALERTS_CLAIM_IDLE_MS": "1000",
}


def add_rule(
    conn: psycopg.Connection,
    rule_id: str,
    symbol: str,
    condition: dict[str, Any],
    target_type: str,
    url: str,
) -> None:
    conn.execute(
        "INSERT INTO alert_rules (id, symbol, condition, target_type, target_url, secret) VALUES (%s, %s, %s, %s, %s, %s)",
        (rule_id, symbol, Jsonb(condition), target_type, url, SECRET if target_type == "webhook" else None),
    )


def signal(symbol: str, action: Action, ts: int) -> Signal:
    return Signal(
        symbol=symbol,
        ts=ts,
        price=Decimal("101.25"),
        action=action,
        confidence=0.7,
        source="rules",
        reasons={"why": "test"},
    )


def successful(rx: Receiver, path: str) -> list[str]:
    return [r.headers[DELIVERY_HEADER] for r in rx.on(path) if r.status == 200]


def test_alerts_are_signed_retried_dead_lettered_and_never_duplicated(
    services: Services, redis_url: str, db_url: str, prefix: str
) -> None:
    with running_receiver() as rx, psycopg.connect(db_url, autocommit=True) as conn:
        rx.script["/flaky"] = [500, 500, 200]
        rx.script["/down"] = [500]
        add_rule(conn, "buy-hook", "AAPL", {"type": "signal", "actions": ["buy"]}, "webhook", rx.url("/hook"))
        add_rule(
            conn, "sell-flaky", "AAPL", {"type": "signal", "actions": ["sell"]}, "webhook", rx.url("/flaky")
        )
        add_rule(
            conn, "sell-down", "MSFT", {"type": "signal", "actions": ["sell"]}, "webhook", rx.url("/down")
        )
        add_rule(conn, "cross", "AAPL", {"type": "price_cross", "level": "100"}, "slack", rx.url("/slack"))
        worker = services.start("alerts", name="alerts", **WORKER_ENV)
        worker.wait_healthy()

        client = redis.Redis.from_url(redis_url)
        now = int(time.time() * 1000)
        signals = [
            signal("AAPL", "buy", now),
            signal("AAPL", "sell", now + 1),
            signal("MSFT", "sell", now + 2),
            signal("AAPL", "hold", now + 3),
        ]
        ticks = [
            Tick(symbol="AAPL", ts=now + i, price=Decimal(p), size=10, source="sim")
            for i, p in enumerate(["99.50", "100.10", "100.40", "99.90"])
        ]

        def publish() -> None:
            for s in signals:
                client.xadd(signals_stream(prefix), s.to_fields())  # type: ignore[arg-type]
            for t in ticks:
                client.xadd(tick_stream(prefix, shard_for("AAPL", SHARDS)), t.to_fields())  # type: ignore[arg-type]

        publish()
        rx.wait_for(
            lambda: (
                len(successful(rx, "/hook")) == 1
                and len(successful(rx, "/flaky")) == 1
                and len(successful(rx, "/slack")) == 2
                and len(rx.on("/down")) == 3
            )
        )

        for req in rx.on("/hook") + rx.on("/flaky") + rx.on("/down"):
            assert verify(SECRET, req.body, req.headers[SIGNATURE_HEADER])
        hook = orjson.loads(rx.on("/hook")[0].body)
        assert (
            hook["rule_id"] == "buy-hook" and hook["event"]["action"] == "buy" and hook["event"]["ts"] == now
        )
        flaky = rx.on("/flaky")
        assert [r.status for r in flaky] == [500, 500, 200]
        assert len({r.body for r in flaky}) == 1 and len({r.headers[DELIVERY_HEADER] for r in flaky}) == 1
        slack_texts = sorted(orjson.loads(r.body)["text"] for r in rx.on("/slack"))
        assert slack_texts == ["AAPL crossed above 100: 100.10", "AAPL crossed below 100: 99.90"]

        def outcomes() -> dict[str, tuple[str, int]]:
            rows = conn.execute("SELECT rule_id, status, attempts FROM alert_deliveries").fetchall()
            return {rule_id: (status, attempts) for rule_id, status, attempts in rows}

        # The receiver answers before the sender records the outcome: wait for the rows.
        recorded = {"sell-flaky": ("delivered", 3), "sell-down": ("dead", 3)}
        wait_until(
            lambda: {k: outcomes().get(k) for k in recorded} == recorded,
            5,
            "the delivery outcomes to be recorded",
        )

        # Crash, then make every entry come round again: the group rewinds to the start and the
        # producer publishes the same events twice more. Nothing may be delivered a second time.
        worker.kill()
        for stream in [signals_stream(prefix), *tick_streams(prefix, SHARDS)]:
            client.xgroup_setid(stream, "alerts", "0")
        publish()
        restarted = services.start("alerts", name="alerts", **WORKER_ENV)
        restarted.wait_healthy()
        fresh = signal("AAPL", "buy", now + 10)
        client.xadd(signals_stream(prefix), fresh.to_fields())  # type: ignore[arg-type]
        rx.wait_for(lambda: len(successful(rx, "/hook")) == 2)

        def settled() -> bool:
            """Every entry handled and acknowledged and no delivery left to send: a duplicate would be in."""
            idle = True
            for stream in [signals_stream(prefix), *tick_streams(prefix, SHARDS)]:
                last_id = client.xinfo_stream(stream)["last-generated-id"]
                for g in client.xinfo_groups(stream):
                    if g["name"] == b"alerts":
                        idle &= int(g["pending"]) == 0 and g["last-delivered-id"] == last_id
            unsent = conn.execute("SELECT count(*) FROM alert_deliveries WHERE status = 'pending'").fetchone()
            return idle and unsent == (0,)

        wait_until(settled, 30, "the restarted worker to settle")

        delivered = [d for path in ("/hook", "/flaky", "/slack") for d in successful(rx, path)]
        assert Counter(delivered).most_common(1)[0][1] == 1, "an alert was delivered twice"
        assert len(delivered) == 5
        assert len(rx.on("/down")) == 3  # dead stays dead
        pending = conn.execute("SELECT count(*) FROM alert_deliveries WHERE status = 'pending'").fetchone()
        assert pending == (0,)
        client.close()
