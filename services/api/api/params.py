"""Request parameters as pydantic models: one definition validates requests and documents them.

The JSON schemas these models emit are the OpenAPI document's parameters, so every pattern here
accepts exactly what the parsers accept (a fuzzer reading the document finds no gap between them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from stocktrack_common.http_errors import ApiError

MAX_LIMIT = 5000
MAX_SYMBOLS_PER_REQUEST = 100
# Symbols are upper case in storage; requests may use any case.
SYMBOL_PARAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}$"
_SYMBOL = re.compile(SYMBOL_PARAM_PATTERN)
SYMBOL_LIST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}(,[A-Za-z0-9][A-Za-z0-9.\-]{0,14})*$"
TIME_PATTERN = r"^(\d{1,13}|\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:\d{2})?)$"
_TIME = re.compile(TIME_PATTERN)
CURSOR_PATTERN = r"^[A-Za-z0-9_\-]{1,512}$"
# Epoch milliseconds accepted: up to year 9999, the last year Python's datetime can hold.
_MAX_EPOCH_MS = 253_402_300_799_999


def parse_symbol(raw: str) -> str:
    if not _SYMBOL.match(raw):
        raise ApiError(
            422,
            f"invalid symbol {raw[:32]!r}",
            code="validation_error",
            details=[
                {
                    "loc": ["path", "symbol"],
                    "msg": f"must match {SYMBOL_PARAM_PATTERN}",
                    "type": "string_pattern_mismatch",
                }
            ],
        )
    return raw.upper()


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


def parse_symbol_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.upper() for item in value.split(",")]
    return value


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
SymbolList = Annotated[
    list[Annotated[str, Field(pattern=SYMBOL_PARAM_PATTERN)]],
    BeforeValidator(parse_symbol_csv),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SYMBOL_LIST_PATTERN,
            "description": f"comma separated, at most {MAX_SYMBOLS_PER_REQUEST}",
            "examples": ["AAPL,MSFT"],
        }
    ),
]
Interval = Literal["1m", "5m", "15m", "1h", "1d"]
Limit = Annotated[
    int | None, Field(ge=1, le=MAX_LIMIT, description="page size (server default when omitted)")
]
Cursor = Annotated[
    str | None, Field(pattern=CURSOR_PATTERN, description="opaque; the next_cursor of the previous page")
]


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, keys: set[str]) -> dict[str, Any]:
    """An opaque cursor is ours or it is a bad request (400), never a crash."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        value = None
    if not isinstance(value, dict) or not keys <= value.keys():
        raise ApiError(400, "malformed cursor", details=[{"loc": ["query", "cursor"], "msg": "not a cursor"}])
    return value


def cursor_time(value: Any) -> dt.datetime:
    """A cursor's time (epoch microseconds); anything else in that slot is a tampered cursor."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_EPOCH_MS * 1000:
        raise ApiError(400, "malformed cursor")
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)


def cursor_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ApiError(400, "malformed cursor")
    return value


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _TimeRange(_Query):
    from_: Timestamp = Field(default=None, alias="from", description="inclusive")
    to: Timestamp = Field(default=None, description="exclusive")

    @model_validator(mode="after")
    def _ordered(self) -> _TimeRange:
        if self.from_ is not None and self.to is not None and self.to <= self.from_:
            raise ValueError("'to' must be later than 'from'")
        return self


class SymbolPath(_Query):
    symbol: str = Field(pattern=SYMBOL_PARAM_PATTERN, description="ticker, any case")


class SymbolsQuery(_Query):
    include_inactive: bool = Field(default=False, description="also list removed symbols")


class LatestQuotesQuery(_Query):
    symbols: SymbolList = Field(min_length=1, max_length=MAX_SYMBOLS_PER_REQUEST)


class TicksQuery(_TimeRange):
    limit: Limit = None
    cursor: Cursor = None


class BarsQuery(_TimeRange):
    interval: Interval = Field(default="1m", description="bar width; coarser bars are rolled up from 1m bars")
    limit: Limit = None


class IndicatorsQuery(BarsQuery):
    sma_period: int = Field(default=20, ge=2, le=500)
    ema_period: int = Field(default=20, ge=2, le=500)
    rsi_period: int = Field(default=14, ge=2, le=500)
    macd_fast: int = Field(default=12, ge=2, le=500)
    macd_slow: int = Field(default=26, ge=3, le=500)
    macd_signal: int = Field(default=9, ge=1, le=500)

    @model_validator(mode="after")
    def _macd_periods(self) -> IndicatorsQuery:
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be smaller than macd_slow")
        return self


class SignalsQuery(_TimeRange):
    symbol: str | None = Field(default=None, pattern=SYMBOL_PARAM_PATTERN)
    action: Literal["buy", "sell", "hold"] | None = None
    limit: Limit = None
    cursor: Cursor = None


class SymbolCreate(BaseModel):
    """Body of POST /v1/symbols: add (or re-activate) a symbol on the watch list."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=SYMBOL_PARAM_PATTERN)
    name: str | None = Field(default=None, max_length=200)
    exchange: str | None = Field(default=None, max_length=32)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
