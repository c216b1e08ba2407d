"""Signing, and the retry/dead-letter decisions of the sender."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from alerts.outbox import delivery_id
from alerts.sender import Attempt, retry_delay, verdict
from alerts.webhook_request import SIGNATURE_HEADER, build_request, verify

PAYLOAD = {"delivery_id": "d1", "event": {"type": "signal"}, "text": "AAPL: BUY", "symbol": "AAPL"}


def test_webhook_body_is_signed_with_hmac_sha256_of_the_exact_bytes() -> None:
    request = build_request("webhook", PAYLOAD, "s3cret")
    expected = "sha256=" + hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == expected
    assert verify("s3cret", request.body, expected)
    assert not verify("s3cret", request.body + b" ", expected)
    assert not verify("other", request.body, expected)
    assert orjson.loads(request.body) == PAYLOAD


def test_slack_target_gets_text_only_and_no_signature() -> None:
    request = build_request("slack", PAYLOAD, None)
    assert orjson.loads(request.body) == {"text": "AAPL: BUY"}
    assert SIGNATURE_HEADER not in request.headers


@pytest.mark.parametrize(
    ("status", "made", "expected"),
    [
        (200, 1, "delivered"),
        (204, 6, "delivered"),
        (500, 1, "retry"),
        (503, 5, "retry"),
        (503, 6, "dead"),
        (429, 2, "retry"),
        (None, 2, "retry"),
        (404, 1, "dead"),
        (301, 1, "dead"),
    ],
)
def test_verdict(status: int | None, made: int, expected: str) -> None:
    assert verdict(Attempt(status, None if status and status < 300 else "x"), made, 6) == expected


def test_retry_delay_doubles_is_capped_and_honours_retry_after() -> None:
    for attempt in range(1, 8):
        delay = retry_delay(attempt, 1.0, 30.0, None)
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(1, 1.0, 30.0, 12.0) == 12.0
    assert retry_delay(1, 1.0, 30.0, 3600.0) == 30.0


def test_delivery_id_is_stable_per_rule_and_event() -> None:
    assert delivery_id("r1", "signal:1:rules") == delivery_id("r1", "signal:1:rules")
    assert delivery_id("r1", "signal:1:rules") != delivery_id("r2", "signal:1:rules")
