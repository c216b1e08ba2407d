"""The HTTP request for one delivery: body bytes and headers, per target type.

Generic webhooks get the full JSON payload and an HMAC-SHA256 signature of the exact body
bytes (`X-Stocktrack-Signature-256: sha256=<hex>`, the scheme GitHub uses), so a receiver can
prove the request came from us and was not altered. Slack-compatible incoming webhooks take
`{"text": ...}` and have no signature scheme (the URL itself is the secret).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

SIGNATURE_HEADER = "X-Stocktrack-Signature-256"
DELIVERY_HEADER = "X-Stocktrack-Delivery"
EVENT_HEADER = "X-Stocktrack-Event"
USER_AGENT = "stocktrack-alerts/1"


@dataclass(frozen=True)
class OutgoingRequest:
    body: bytes
    headers: dict[str, str]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header_value: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header_value)


def build_request(target_type: str, payload: dict[str, Any], secret: str | None) -> OutgoingRequest:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(payload.get("delivery_id", "")),
        EVENT_HEADER: str((payload.get("event") or {}).get("type", "")),
    }
    if target_type == "slack":
        return OutgoingRequest(orjson.dumps({"text": payload.get("text", "")}), headers)
    body = orjson.dumps(payload)
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return OutgoingRequest(body, headers)
