"""Strict field parsing for provider payloads: anything odd raises MalformedResponse, never a bogus tick."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fetcher.providers.errors import MalformedResponse


def positive_decimal(provider: str, value: Any, field: str) -> Decimal:
    """Prices arrive as strings (Alpha Vantage) or JSON numbers; both must be finite and > 0."""
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(provider, f"{field} missing or not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedResponse(provider, f"{field} is not finite")
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedResponse(provider, f"{field} is not a decimal") from None
    if not number.is_finite() or number <= 0:
        raise MalformedResponse(provider, f"{field} must be a positive number")
    return number


def positive_ohlc(
    provider: str, row: dict[str, Any], fields: tuple[str, str, str, str]
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """A bar's open, high, low and close under the provider's own field names, each checked in that order."""
    open_, high, low, close = (positive_decimal(provider, row.get(field), field) for field in fields)
    return open_, high, low, close


def non_negative_int(provider: str, value: Any, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(provider, f"{field} missing or not an integer")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedResponse(provider, f"{field} is not an integer") from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise MalformedResponse(provider, f"{field} must be a non-negative integer")
    return int(number)


def rfc3339_ms(provider: str, value: Any, field: str) -> int:
    """'2024-05-10T13:30:00.123456789Z' -> epoch ms (nanosecond digits beyond micro are dropped)."""
    if not isinstance(value, str) or not value:
        raise MalformedResponse(provider, f"{field} missing")
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, rest))  # the fraction only, not the offset
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedResponse(provider, f"{field} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def require_dict(provider: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponse(provider, f"{what} is not an object")
    return value
