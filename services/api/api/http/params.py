"""Request parameters every feature uses (times, symbols, page sizes, cursors) as pydantic types.

One definition validates requests and documents them: the JSON schemas these types emit are the
OpenAPI document's parameters, so every pattern here accepts exactly what the parsers accept (a
fuzzer reading the document finds no gap between them).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from api.http.cursors import CURSOR_PATTERN
from stocktrack_common.http_errors import ApiError

MAX_LIMIT = 5000
# Symbols are upper case in storage; requests may use any case.
SYMBOL_PARAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}$"
# Field ranges are in the pattern (month 01-12, each month's own last day, February 29 in
# leap years only, hour 00-23, ...), so every time the pattern allows is one the parser takes.
_YEAR = r"(000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})"
# Gregorian leap years from 0001: divisible by 4 but not by 100, or by 400.
_LEAP_YEAR = r"(\d\d(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)|02-(0[1-9]|1\d|2[0-8]))"
_DATE = rf"({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_CLOCK = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
_OFFSET = r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
TIME_PATTERN = rf"^(\d{{1,13}}|{_DATE}([T ]{_CLOCK})?{_OFFSET}?)$"
_TIME = re.compile(TIME_PATTERN)
# Free text that reaches the database: no NUL (PostgreSQL text cannot hold it) and no other
# control character (they corrupt logs and terminals). Refused with 422 like any other bad field.
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Epoch milliseconds accepted: up to year 9999, the last year Python's datetime can hold.
_MAX_EPOCH_MS = 253_402_300_799_999


def parse_time(value: Any) -> Any:
    """Accept ISO 8601 (a time without offset is UTC) or epoch milliseconds."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value)
    if not _TIME.match(text):
        raise ValueError("expected ISO 8601 or epoch milliseconds")
    if text.isdigit():
        ms = int(text)
        if ms > _MAX_EPOCH_MS:
            raise ValueError("epoch milliseconds out of range")
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("not a valid ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


Timestamp = Annotated[
    dt.datetime | None,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TIME_PATTERN,
            "description": "ISO 8601 (UTC when no offset is given) or epoch milliseconds",
            "examples": ["2024-05-01T13:30:00Z", "1714570200000"],
        }
    ),
]
Printable = Annotated[str, Field(pattern=PRINTABLE_PATTERN)]
"""Text without NUL or control characters; give its length bounds on the field."""


Limit = Annotated[
    int | None, Field(ge=1, le=MAX_LIMIT, description="page size (server default when omitted)")
]
Cursor = Annotated[
    str | None,
    Field(
        pattern=CURSOR_PATTERN,
        description="opaque and signed: a next_cursor from the previous page of the same query "
        "(same symbol, interval and filters; the limit may change), passed back unchanged; any "
        "other value is refused with 400",
    ),
]


def cursor_time(value: Any) -> dt.datetime:
    """A cursor's time (epoch microseconds); anything else in that slot is a tampered cursor."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_EPOCH_MS * 1000:
        raise ApiError(400, "malformed cursor")
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)


def cursor_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ApiError(400, "malformed cursor")
    return value


class QueryModel(BaseModel):
    """Query and path parameters: unknown names are refused, aliases (`from`) accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TimeRange(QueryModel):
    """A half-open range [from, to). One whose `to` is not after `from` holds no instant: it is
    answered with an empty page, as any other range without rows - every pair the schema allows
    is a valid request."""

    from_: Timestamp = Field(default=None, alias="from", description="inclusive")
    to: Timestamp = Field(
        default=None, description="exclusive; not after `from` = an empty range (an empty page)"
    )
