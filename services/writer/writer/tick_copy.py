"""Tick rows in PostgreSQL's binary COPY format, for
`COPY ticks (symbol, ts, price, size, source, trade_id) FROM STDIN (FORMAT BINARY)`.

Why binary: with a text COPY PostgreSQL parses every tick's timestamptz and numeric text on its
side (`timestamptz_in`, `numeric_in`); with a binary one it only reads fixed-width integers
(`timestamptz_recv`, `numeric_recv`). That is cheaper on the database's side, which a writer batch
waits for: 200,000 ticks into a temp table took 58 ms as binary against 103 ms as text
(PostgreSQL 15, one connection). The Python side stays cheap too: the encodings of the values
that repeat (symbol, price, size, source) are cached by their raw bytes, so a row costs the
timestamp's arithmetic, one struct pack and one join (see `TickCopyEncoder.row`).

Inputs are a tick's raw values as `stocktrack_common.messages.tick_row` yields them, already
validated, so nothing here checks them again: ASCII symbol and source (the text binary format is
the bytes themselves), epoch milliseconds (UTC), a plain decimal price
`[0-9]{1,15}(\\.[0-9]{1,12})?` whose written fraction digits are its display scale, a
non-negative integer size, and a trade id or b"" for NULL.

Formats (PostgreSQL docs, "COPY", section "Binary Format"): a header (signature, flags, header
extension length), per row an int16 field count and per field an int32 length (-1: NULL) and the
type's binary send format, then an int16 -1 trailer. timestamptz is an int64 of microseconds
since 2000-01-01 00:00:00 UTC; int8 an int64. numeric follows `numeric_send`/`numeric_recv` in
PostgreSQL's src/backend/utils/adt/numeric.c (the same layout psycopg's
`dump_decimal_to_numeric_binary` in psycopg/types/numeric.py produces): int16 ndigits, int16
weight, int16 sign (0x0000 positive), int16 dscale, then ndigits base-10000 digits, most
significant first, the first one worth 10000**weight, without leading or trailing zero digits;
zero is no digits and weight 0. `numeric_recv` does not reject a dscale smaller than the digits
sent: it silently truncates the value to it, so getting dscale wrong loses data without an error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
"""Signature, flags (no OIDs) and header extension length 0: the start of a binary COPY payload.

psycopg's `Copy.write` sends bytes as they are (it adds header and trailer only to rows written
with `write_row`), so a payload is COPY_HEADER + rows + COPY_TRAILER.
"""

COPY_TRAILER = b"\xff\xff"
"""The int16 -1 field count that ends a binary COPY payload."""

CACHE_LIMIT = 100_000
"""Entries per value cache before it is emptied: bounds memory if values never repeat."""

_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01 00:00:00 UTC in Unix epoch milliseconds
_INT64_FIELD = struct.Struct(">iq")  # length 8 and the value: the timestamptz and int8 fields
_LENGTH = struct.Struct(">i")
_FIELD_COUNT = struct.pack(">h", 6)
_NULL = _LENGTH.pack(-1)


def text_field(value: bytes) -> bytes:
    """A text field: its length and its bytes (ASCII, so the same in every server encoding)."""
    return _LENGTH.pack(len(value)) + value


def numeric_field(price: bytes) -> bytes:
    """A numeric field of a plain decimal, its display scale the number of fraction digits written.

    The integer part is padded on the left and the fraction on the right to whole groups of four
    decimal digits, so the groups are base-10000 digits aligned on the decimal point; then the
    zero groups at either end are dropped as `numeric_send` does (each one dropped in front
    lowers the weight). b"00012.30" gives ndigits 2, weight 0, dscale 2, digits 12, 3000.
    """
    whole, _, fraction = price.partition(b".")
    dscale = len(fraction)
    whole = whole.zfill(len(whole) + -len(whole) % 4)
    decimals = whole + fraction + b"0" * (-dscale % 4)
    digits = [int(decimals[i : i + 4]) for i in range(0, len(decimals), 4)]
    weight = len(whole) // 4 - 1
    while digits and digits[0] == 0:
        del digits[0]
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    n = len(digits)
    return struct.pack(f">ihhHH{n}H", 8 + 2 * n, n, weight, 0, dscale, *digits)


def _int8_field(size: bytes) -> bytes:
    return _INT64_FIELD.pack(8, int(size))


def _first_fields(symbol: bytes) -> bytes:
    """What every row of a symbol starts with: the field count and the symbol field."""
    return _FIELD_COUNT + text_field(symbol)


class FieldCache(dict[bytes, V]):
    """Encoded fields (or any value derived from raw bytes) by raw value, made on a miss; emptied when full.

    A hit is a plain dict subscript (no method call), which is what makes the cached fields
    nearly free on the hot path. Emptying instead of evicting keeps the miss path simple; the
    values that repeat are back after a few ticks.
    """

    __slots__ = ("_encode", "_limit")

    def __init__(self, encode: Callable[[bytes], V], limit: int) -> None:
        super().__init__()
        self._encode = encode
        self._limit = limit

    def __missing__(self, value: bytes) -> V:
        if len(self) >= self._limit:
            self.clear()
        field = self[value] = self._encode(value)
        return field


class TickCopyEncoder:
    """Encodes tick rows for the binary COPY of `ticks`; one per writer, its caches warm across batches."""

    __slots__ = ("prices", "sizes", "sources", "symbols")

    def __init__(self, cache_limit: int = CACHE_LIMIT) -> None:
        self.symbols: FieldCache[bytes] = FieldCache(_first_fields, cache_limit)
        self.prices: FieldCache[bytes] = FieldCache(numeric_field, cache_limit)
        # Sizes repeat too (round lots): a cached field costs less than int() and a pack per row.
        self.sizes: FieldCache[bytes] = FieldCache(_int8_field, cache_limit)
        self.sources: FieldCache[bytes] = FieldCache(text_field, cache_limit)

    def row(self, symbol: bytes, ts_ms: int, price: bytes, size: bytes, source: bytes, trade: bytes) -> bytes:
        """One row: symbol, ts (epoch ms), price, size, source, trade id (b"" stores NULL)."""
        return b"".join(self.fields(symbol, ts_ms, price, size, source, trade))

    def fields(
        self, symbol: bytes, ts_ms: int, price: bytes, size: bytes, source: bytes, trade: bytes
    ) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
        """The row's parts, for a caller that joins a whole batch's rows at once."""
        return (
            self.symbols[symbol],
            _INT64_FIELD.pack(8, (ts_ms - _PG_EPOCH_MS) * 1000),
            self.prices[price],
            self.sizes[size],
            self.sources[source],
            _LENGTH.pack(len(trade)) + trade if trade else _NULL,
        )
