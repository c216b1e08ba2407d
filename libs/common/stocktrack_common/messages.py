"""The stream messages (docs/architecture.md) as pydantic models, with their encoding to stream fields.

Redis stream fields are flat strings; decoding validates everything a consumer relies on so a
malformed entry is rejected once, with a reason, instead of failing somewhere downstream.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,14}$"
SOURCE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
# A provider's identity of one trade, unique per (symbol, source): Alpaca's is "<exchange>:<id>",
# since its trade ids are unique only per exchange.
TRADE_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
# 9999-12-30T23:59:59.999Z: the last instant whose daily partition (and its end bound, the next
# midnight) Python's datetime can still express, so every tick that validates can be stored.
MAX_TS_MS = 253_402_214_399_999
# The table bounds (migration 0004): what validates here can be stored, and what cannot be
# stored never validates, so it is dead-lettered at decode time by every group instead of
# failing a database write (and its batch's good neighbours) five times first.
PRICE_MAX_INTEGER_DIGITS = 15  # price < 10^15
PRICE_MAX_SCALE = 12  # at most 12 digits after the decimal point, as written
_PRICE_LIMIT = Decimal(10) ** PRICE_MAX_INTEGER_DIGITS
MAX_TICK_SIZE = 999_999_999_999  # < 10^12 shares: far above any trade, and a minute's sum stays a bigint


class MessageError(ValueError):
    """A stream entry that can never be processed; the reason goes to the dead-letter stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    ts: int = Field(gt=0, le=MAX_TS_MS, description="event time, UTC epoch milliseconds")
    price: Decimal = Field(gt=0)

    @field_validator("price", mode="before")
    @classmethod
    def _finite_price(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("price must be finite")
        if isinstance(value, (str, bytes)):
            text = _text(value).strip()
            try:
                parsed = Decimal(text)
            except InvalidOperation as exc:
                raise ValueError(f"price is not a decimal: {text!r}") from exc
            if not parsed.is_finite():
                raise ValueError("price must be finite")
            return parsed
        return value

    @field_validator("price")
    @classmethod
    def _storable_price(cls, value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked above
        if -exponent > PRICE_MAX_SCALE:
            raise ValueError(f"price has more than {PRICE_MAX_SCALE} digits after the decimal point")
        if value >= _PRICE_LIMIT:
            raise ValueError(
                f"price has more than {PRICE_MAX_INTEGER_DIGITS} digits before the decimal point"
            )
        return value

    @field_validator("ts", mode="before")
    @classmethod
    def _integer_ts(cls, value: Any) -> Any:
        if isinstance(value, (str, bytes)):
            text = _text(value).strip()
            if not text.isdigit():
                raise ValueError(f"ts is not integer epoch milliseconds: {text!r}")
            return int(text)
        return value

    def _common_fields(self) -> dict[str, str]:
        """The stream fields every message starts with, written the one way every reader parses them."""
        return {
            "v": str(self.v),
            "symbol": self.symbol,
            "ts": str(self.ts),
            "price": format(self.price, "f"),
        }


class Tick(_Message):
    """One trade or quote of one symbol, as published on a tick shard stream."""

    size: int = Field(
        ge=0, le=MAX_TICK_SIZE, description="shares traded since the previous tick of this symbol"
    )
    source: str = Field(pattern=SOURCE_PATTERN)
    trade: str | None = Field(
        default=None,
        pattern=TRADE_ID_PATTERN,
        description="the provider's trade id, for trades a provider may later correct or cancel",
    )

    def to_fields(self) -> dict[str, str]:
        fields = {
            **self._common_fields(),
            "size": str(self.size),
            "source": self.source,
        }
        if self.trade is not None:
            fields["trade"] = self.trade
        return fields


class TradeAmendment(_Message):
    """A provider's correction or cancel of a trade it published earlier, on the amendments stream.

    `trade` names the stored tick (its `trade` id, with symbol and source). A correction carries
    the corrected `price`, `size` and the trade's new id (`corrected_trade`: a later cancel of
    the corrected trade names that one); a cancel carries the cancelled trade's price and size as
    the provider reports them, kept for the record. `ts` is the provider's time of the amendment.
    """

    kind: Literal["correction", "cancel"]
    size: int = Field(ge=0, le=MAX_TICK_SIZE)
    source: str = Field(pattern=SOURCE_PATTERN)
    trade: str = Field(pattern=TRADE_ID_PATTERN)
    corrected_trade: str | None = Field(default=None, pattern=TRADE_ID_PATTERN)

    @model_validator(mode="after")
    def _correction_names_the_new_trade(self) -> TradeAmendment:
        if (self.kind == "correction") != (self.corrected_trade is not None):
            raise ValueError("corrected_trade is required for a correction and refused for a cancel")
        return self

    def to_fields(self) -> dict[str, str]:
        fields = {
            **self._common_fields(),
            "kind": self.kind,
            "size": str(self.size),
            "source": self.source,
            "trade": self.trade,
        }
        if self.corrected_trade is not None:
            fields["corrected_trade"] = self.corrected_trade
        return fields


class Signal(_Message):
    """A recommendation, as published on the signals stream."""

    action: Literal["buy", "sell", "hold"]
    confidence: float = Field(ge=0.0, le=1.0)
    source: str = Field(pattern=r"^(rules|model:[A-Za-z0-9_.\-]+)$")
    reasons: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reasons", mode="before")
    @classmethod
    def _json_reasons(cls, value: Any) -> Any:
        if isinstance(value, (str, bytes)):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise ValueError("reasons is not JSON") from exc
        return value

    @field_validator("reasons")
    @classmethod
    def _storable_reasons(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _holds_nul(value):
            raise ValueError("reasons contains a NUL character, which jsonb cannot store")
        return value

    def to_fields(self) -> dict[str, str]:
        return signal_fields(
            symbol=self.symbol,
            ts=self.ts,
            price=self.price,
            action=self.action,
            confidence=self.confidence,
            source=self.source,
            reasons=self.reasons,
        )


def signal_fields(
    *,
    symbol: str,
    ts: int,
    price: Decimal,
    action: str,
    confidence: float,
    source: str,
    reasons: dict[str, Any],
) -> dict[str, str]:
    """A signal's stream fields: what `Signal(...).to_fields()` gives, without building the model.

    For a producer whose values are valid by construction: the recommender, whose symbols and
    prices come from validated ticks, actions and sources from its own rules and loaded models,
    and reasons from its indicators. It publishes up to one signal per symbol at one bar end
    (500 at once), and validating each into a `Signal` first was a third of that close's
    per-signal cost. Readers still validate every entry (`decode_signal`).
    """
    return {
        "v": str(SCHEMA_VERSION),
        "symbol": symbol,
        "ts": str(ts),
        "price": format(price, "f"),
        "action": action,
        "confidence": repr(float(confidence)),
        "source": source,
        "reasons": orjson.dumps(reasons).decode(),
    }


def _holds_nul(value: Any) -> bool:
    """Whether any key or string in `value` holds a NUL.

    JSON escapes a NUL as `\\u0000`, so a document whose JSON lacks that sequence holds none: one
    orjson pass instead of a Python walk of every key and string, which was most of the cost of
    building a signal (the recommender builds 500 of them in one bar close). Only a document
    whose JSON has it (a NUL, or a literal backslash-u0000 text) is walked.
    """
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return False
    except TypeError:  # not plain JSON types (the walk below decides)
        pass
    return _walk_holds_nul(value)


def _walk_holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_walk_holds_nul(k) or _walk_holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_walk_holds_nul(v) for v in value)
    return False


def _decode(model: type[_Message], fields: dict[Any, Any]) -> Any:
    try:
        data = {_text(k): _text(v) for k, v in fields.items()}
    except UnicodeDecodeError as exc:
        # Any other exception type would escape the consumers' MessageError handling and stop them.
        raise MessageError(
            f"field is not UTF-8: {exc.object[max(exc.start - 8, 0) : exc.end + 8]!r}"
        ) from exc
    version = data.get("v")
    if version is None:
        raise MessageError("missing field: v")
    if version != str(SCHEMA_VERSION):
        raise MessageError(f"unknown schema version: {version!r}")
    data["v"] = SCHEMA_VERSION  # type: ignore[assignment]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MessageError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, 'field: message', so a dead-letter reason reads at a glance."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "message"
        msg = "missing field" if err["type"] == "missing" else err["msg"]
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


_TICK_KEYS = frozenset({b"v", b"symbol", b"ts", b"price", b"size", b"source"})
_TRADE_TICK_KEYS = _TICK_KEYS | {b"trade"}
_TRADE_BYTES = re.compile(rb"[A-Za-z0-9_.:\-]{1,64}\Z")
_SYMBOL_BYTES = re.compile(SYMBOL_PATTERN.encode())
_SOURCE_BYTES = re.compile(SOURCE_PATTERN.encode())
_TICK_FIELDS = frozenset(Tick.model_fields)


_ROW_BYTES = re.compile(
    rb"[A-Z0-9][A-Z0-9.\-]{0,14}\t(?:0|[1-9][0-9]{0,17})\t[0-9]{1,15}(?:\.[0-9]{1,12})?\t(?:0|[1-9][0-9]{0,11})"
    rb"\t[A-Za-z0-9_.:\-]{1,64}\Z"
)

TickRow = tuple[bytes, bytes, bytes, bytes, bytes, bytes]
"""symbol, ts (epoch ms), price, size, source, trade id (b"" when none): a well-formed tick's raw values."""


def well_formed_tick(fields: dict[Any, Any]) -> TickRow | None:
    """The raw values of a tick in the plain form producers write, or None for anything else.

    Consumers that only store ticks (the writer) use the bytes as they are; the checks are
    strict enough that the values are valid SQL input. None does not mean invalid: the
    caller falls back to `decode_tick`, which accepts every valid spelling and explains
    every invalid one.
    """
    keys = fields.keys()
    if keys == _TICK_KEYS:
        trade = b""
    elif keys == _TRADE_TICK_KEYS and _TRADE_BYTES.match(fields[b"trade"]):
        trade = fields[b"trade"]
    else:
        return None
    if fields[b"v"] != b"1":
        return None
    symbol, ts, price = fields[b"symbol"], fields[b"ts"], fields[b"price"]
    size, source = fields[b"size"], fields[b"source"]
    # One regex over the tab-joined values checks all five fields in a single C call; the row is
    # built once, at the end (unpacking a five-tuple into a sixth cost ~10% of this function).
    if (
        _ROW_BYTES.match(b"\t".join((symbol, ts, price, size, source)))
        and price.strip(b"0.")
        and 0 < int(ts) <= MAX_TS_MS
    ):
        return (symbol, ts, price, size, source, trade)
    return None


# A tick's fields as producers write them (Tick.to_fields: v, symbol, ts, price, size, source and
# an optional trade), tab-joined: one regex checks every name, its place and every value. The
# price must not be zero (the lookahead); ts has at most 14 digits, all below MAX_TS_MS (a
# 15-digit one takes the dict path, which checks the bound).
_ENTRY = (
    rb"v\t1\tsymbol\t[A-Z0-9][A-Z0-9.\-]{0,14}\tts\t[1-9][0-9]{0,13}"
    rb"\tprice\t(?=0*\.?0*[1-9])[0-9]{1,15}(?:\.[0-9]{1,12})?\tsize\t(?:0|[1-9][0-9]{0,11})"
    rb"\tsource\t[A-Za-z0-9_.:\-]{1,64}"
)
_TRADE = rb"\ttrade\t[A-Za-z0-9_.:\-]{1,64}"
# Entries of one layout, tab-joined one after the other.
_ENTRIES_BYTES = {
    12: re.compile(rb"(?:" + _ENTRY + rb"\t)*" + _ENTRY + rb"\Z"),
    14: re.compile(rb"(?:" + _ENTRY + _TRADE + rb"\t)*" + _ENTRY + _TRADE + rb"\Z"),
}
_ROW_OF_TRADE_ENTRY = operator.itemgetter(3, 5, 7, 9, 11, 13)


def tick_row_of_entry(flat: list[bytes]) -> TickRow | None:
    """`well_formed_tick` for a stream entry's flat field list `[name, value, ...]`, in the
    producers' field order; None for anything else (the caller then decodes the fields' dict).

    Why: a consumer of the tick streams at full rate spent more on building a dict per entry
    than on the checks, and the row is made of the list's own values, not copies.
    """
    rows = tick_rows_of_entries([flat])
    return None if rows is None else rows[0]


def tick_rows_of_entries(flats: list[list[bytes]]) -> list[TickRow] | None:
    """`tick_row_of_entry` of every entry of a read at once, or None unless every one passes it.

    Why: per entry, the function call, the join and the regex call cost about as much as the
    checks themselves; one join and one regex over the whole read check the same. Every entry
    must have the same length (12, or 14 with a trade id), so the read's items split into
    entries at fixed places; the tab count proves that no item holds a tab, so the anchored
    regex sees those same items at those places and no entry passes with its items shifted.
    None leaves each entry to `tick_row_of_entry`.
    """
    lengths = set(map(len, flats))
    if len(lengths) != 1:
        return None
    (n,) = lengths
    pattern = _ENTRIES_BYTES.get(n)
    if pattern is None:
        return None
    joined = b"\t".join(itertools.chain.from_iterable(flats))
    if joined.count(b"\t") != n * len(flats) - 1 or pattern.match(joined) is None:
        return None
    if n == 14:
        return list(map(_ROW_OF_TRADE_ENTRY, flats))
    return [(f[3], f[5], f[7], f[9], f[11], b"") for f in flats]


def _fast_tick(fields: dict[Any, Any]) -> Tick | None:
    row = well_formed_tick(fields)
    if row is None:
        return None
    symbol, ts, price, size, source, trade = row
    # What model_construct does, minus its generic bookkeeping: every value is already valid.
    tick = object.__new__(Tick)
    object.__setattr__(
        tick,
        "__dict__",
        {
            "v": 1,
            "symbol": symbol.decode(),
            "ts": int(ts),
            "price": Decimal(price.decode()),
            "size": int(size),
            "source": source.decode(),
            "trade": trade.decode() or None,
        },
    )
    object.__setattr__(tick, "__pydantic_fields_set__", _TICK_FIELDS)
    object.__setattr__(tick, "__pydantic_extra__", None)
    object.__setattr__(tick, "__pydantic_private__", None)
    return tick


def tick_row(fields: dict[Any, Any]) -> TickRow:
    """Raw row of a valid tick (normalised through the model when it is not in the plain form)."""
    row = well_formed_tick(fields)
    if row is not None:
        return row
    tick: Tick = _decode(Tick, fields)
    f = tick.to_fields()
    return (
        f["symbol"].encode(),
        f["ts"].encode(),
        f["price"].encode(),
        f["size"].encode(),
        f["source"].encode(),
        f.get("trade", "").encode(),
    )


def decode_tick(fields: dict[Any, Any]) -> Tick:
    """Validate raw stream fields into a Tick, or raise MessageError with the reason."""
    tick = _fast_tick(fields)
    if tick is not None:
        return tick
    return _decode(Tick, fields)


def decode_amendment(fields: dict[Any, Any]) -> TradeAmendment:
    """Validate raw stream fields into a TradeAmendment, or raise MessageError with the reason."""
    amendment: TradeAmendment = _decode(TradeAmendment, fields)
    return amendment


def decode_signal(fields: dict[Any, Any]) -> Signal:
    """Validate raw stream fields into a Signal, or raise MessageError with the reason."""
    return _decode(Signal, fields)
