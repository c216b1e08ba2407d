"""writer.tick_copy: a binary COPY loads exactly what a text COPY of the same raw values loads (real PostgreSQL).

The text COPY is the oracle: PostgreSQL parses the raw bytes itself (the writer wrote a text
COPY before this encoder). Both load into temp tables LIKE `ticks`, so the column types are those of
the migrations. Prices are compared as text too, so a wrong display scale shows (1.50 vs 1.5).
"""

from __future__ import annotations

import datetime as dt

import psycopg

from stocktrack_common.messages import MAX_TICK_SIZE, MAX_TS_MS
from writer.tick_copy import COPY_HEADER, COPY_TRAILER, TickCopyEncoder, numeric_field

COLUMNS = "symbol, ts, price, size, source, trade_id"

PRICES = [
    b"0.0001",
    b"0.5",
    b"1",
    b"1.50",
    b"1.0000",
    b"10000",
    b"100000000",
    b"99999.9999",
    b"123456789012345.123456789012",
    b"999999999999999.999999999999",
    b"00012.30",
    b"000000000000000.5",
    b"0.000000000001",
    b"0.00010000",
    b"9999",
    b"10000.0001",
    b"12345.6789",
    b"0",
    b"0.00",
]
TIMES_MS = [
    -1,  # 1969-12-31 23:59:59.999
    1,
    946_684_799_999,  # 1999-12-31 23:59:59.999, the last millisecond before PostgreSQL's epoch
    946_684_800_000,
    946_684_800_001,
    1_700_000_000_123,
    MAX_TS_MS,
]
SIZES = [b"0", b"1", b"300", b"%d" % MAX_TICK_SIZE]
SYMBOLS = [b"AAPL", b"BRK.B", b"X"]
SOURCES = [b"alpaca", b"replay:2024-01_x"]
TRADES = [b"", b"T-1:a.b_c", b""]

ROWS = [
    (
        SYMBOLS[i % len(SYMBOLS)],
        TIMES_MS[i % len(TIMES_MS)],
        price,
        SIZES[i % len(SIZES)],
        SOURCES[i % len(SOURCES)],
        TRADES[i % len(TRADES)],
    )
    for i, price in enumerate(PRICES * 2)
]


def text_line(symbol: bytes, ts_ms: int, price: bytes, size: bytes, source: bytes, trade: bytes) -> bytes:
    ts = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ts_ms)).isoformat()
    return b"\t".join((symbol, ts.encode(), price, size, source, trade or b"\\N")) + b"\n"


def loaded(conn: psycopg.Connection, table: str) -> list[tuple[object, ...]]:
    # Ordered by every selected column, so equal lists mean equal multisets of rows.
    cur = conn.execute(
        f"SELECT symbol, ts, price::text, size, source, trade_id FROM {table} ORDER BY 1, 2, 3, 4, 5, 6"
    )
    return cur.fetchall()


def test_binary_copy_loads_what_a_text_copy_loads(db_url: str) -> None:
    encoder = TickCopyEncoder()
    # Twice: the second pass encodes every value from the warm caches.
    payload = COPY_HEADER + b"".join(encoder.row(*row) for row in ROWS + ROWS) + COPY_TRAILER
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TEMP TABLE binary_ticks (LIKE ticks)")
        conn.execute("CREATE TEMP TABLE text_ticks (LIKE ticks)")
        with conn.cursor().copy(f"COPY binary_ticks ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)
        with conn.cursor().copy(f"COPY text_ticks ({COLUMNS}) FROM STDIN") as copy:
            copy.write(b"".join(text_line(*row) for row in ROWS + ROWS))
        binary, text = loaded(conn, "binary_ticks"), loaded(conn, "text_ticks")
    assert len(binary) == 2 * len(ROWS)
    assert binary == text
    prices = {row[2] for row in binary}
    assert {"1.50", "12.30", "0.00010000", "123456789012345.123456789012", "0.00"} <= prices


def test_numeric_fields_are_the_bytes_numeric_send_gives(db_url: str) -> None:
    """Canonical like the server's own: stripped zero digits, weight and dscale as it sends them."""
    fields = [numeric_field(price) for price in PRICES]
    with psycopg.connect(db_url) as conn:
        cur = conn.execute(
            "SELECT numeric_send(p::numeric) FROM unnest(%s::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i",
            [[price.decode() for price in PRICES]],
        )
        sent = [bytes(row[0]) for row in cur]
    assert [field[4:] for field in fields] == sent
    assert [int.from_bytes(field[:4], "big") for field in fields] == [len(s) for s in sent]


def test_caches_stay_bounded() -> None:
    bounded, unbounded = TickCopyEncoder(cache_limit=8), TickCopyEncoder(cache_limit=1000)
    for _ in range(2):  # the second pass meets values the bounded caches dropped
        for i in range(100):
            row = (b"S%d" % i, 1_700_000_000_000 + i, b"%d.5" % i, b"%d" % i, b"src%d" % i, b"")
            assert bounded.row(*row) == unbounded.row(*row)
            caches = (bounded.symbols, bounded.prices, bounded.sizes, bounded.sources)
            assert all(len(cache) <= 8 for cache in caches)
    assert len(unbounded.prices) == 100
