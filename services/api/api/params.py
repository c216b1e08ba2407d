"""Request parameters as pydantic models: one definition validates requests and documents them."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from stocktrack_common.http_errors import ApiError
from stocktrack_common.messages import SYMBOL_PATTERN

_SYMBOL = re.compile(SYMBOL_PATTERN)


def parse_symbol(raw: str) -> str:
    symbol = raw.strip().upper()
    if not _SYMBOL.match(symbol):
        raise ApiError(422, f"invalid symbol {raw[:32]!r}", details=[{"loc": ["path", "symbol"],
                                                                       "msg": f"must match {SYMBOL_PATTERN}"}])
    return symbol


def parse_time(value: Any) -> Any:
    """Accept ISO 8601 (a naive time is UTC) or epoch milliseconds."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("expected ISO 8601 or epoch milliseconds") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


Timestamp = Annotated[dt.datetime | None, BeforeValidator(parse_time)]


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(value, dict):
        raise ValueError("malformed cursor")
    return value


class TicksQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: Timestamp = Field(default=None, alias="from", description="ISO 8601 or epoch ms, inclusive")
    to: Timestamp = Field(default=None, description="ISO 8601 or epoch ms, exclusive")
    limit: int = Field(default=500, ge=1, le=5000)
    cursor: str | None = Field(default=None, max_length=512, description="opaque; from next_cursor")

    @field_validator("cursor")
    @classmethod
    def _cursor_ok(cls, value: str | None) -> str | None:
        if value is not None:
            decoded = decode_cursor(value)
            if not {"ts", "source"} <= decoded.keys():
                raise ValueError("malformed cursor")
        return value
