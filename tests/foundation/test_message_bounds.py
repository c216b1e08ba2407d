"""Message bounds equal table bounds: a tick or signal validates exactly when PostgreSQL stores it.

Each case is decoded (the writer's raw-row path, and the model path every other group uses) and,
separately, inserted into the real tables as text. The two verdicts must agree, so nothing that
validates can fail a database write later, and nothing storable is dead-lettered.
"""

from __future__ import annotations

import psycopg
import pytest

from stocktrack_common.messages import MessageError, decode_signal, decode_tick, tick_row

TS = "1700000000000"

PRICES = [
    "1",
    "0.000000000001",
    "0.0000000000001",
    "1.000000000000",
    "1.0000000000000",
    "999999999999999.999999999999",
    "1000000000000000",
    "00000000000000000012.5",
    "1E+14",
    "1E+15",
    "1e-12",
    "1e-13",
    "1E+200000",
]
SIZES = ["0", "999999999999", "1000000000000", "9223372036854775807", "9223372036854775808"]


def stored(db_url: str, sql: str, params: tuple[str, ...]) -> bool:
    with psycopg.connect(db_url) as conn:
        try:
            conn.execute(sql, params)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError):
            return False
        finally:
            conn.rollback()
    return True


def tick_fields(price: str, size: str) -> dict[bytes, bytes]:
    return {
        b"v": b"1",
        b"symbol": b"AAPL",
        b"ts": TS.encode(),
        b"price": price.encode(),
        b"size": size.encode(),
        b"source": b"sim",
    }


def validates(decode: object, fields: dict[bytes, bytes]) -> bool:
    try:
        decode(fields)  # type: ignore[operator]
    except MessageError:
        return False
    return True


@pytest.fixture
def tick_db(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ticks_bounds_probe PARTITION OF ticks"
            " FOR VALUES FROM ('2023-11-14') TO ('2023-11-15')"
        )
    return db_url


def test_a_tick_validates_exactly_when_it_can_be_stored(tick_db: str) -> None:
    cases = [(price, "100") for price in PRICES] + [("10.5", size) for size in SIZES]
    for price, size in cases:
        check_tick(tick_db, price, size)


def check_tick(db_url: str, price: str, size: str) -> None:
    fields = tick_fields(price, size)
    by_model, by_row = validates(decode_tick, fields), validates(tick_row, fields)
    assert by_model == by_row
    if by_row:
        symbol, ts, stored_price, stored_size, source, _ = (v.decode() for v in tick_row(fields))
    else:
        symbol, ts, stored_price, stored_size, source = "AAPL", TS, price, size, "sim"
    can_store = stored(
        db_url,
        "INSERT INTO ticks (symbol, ts, price, size, source)"
        " VALUES (%s, to_timestamp(%s::bigint / 1000.0), %s::numeric, %s::bigint, %s)",
        (symbol, ts, stored_price, stored_size, source),
    )
    assert by_model == can_store, f"price={price} size={size}: validates={by_model} stored={can_store}"


def test_a_signal_validates_exactly_when_it_can_be_stored(db_url: str) -> None:
    for price in PRICES:
        check_signal(db_url, price)


def check_signal(db_url: str, price: str) -> None:
    fields = {
        b"v": b"1",
        b"symbol": b"AAPL",
        b"ts": TS.encode(),
        b"price": price.encode(),
        b"action": b"buy",
        b"confidence": b"0.5",
        b"source": b"rules",
        b"reasons": b"{}",
    }
    ok = validates(decode_signal, fields)
    text = decode_signal(fields).to_fields()["price"] if ok else price
    can_store = stored(
        db_url,
        "INSERT INTO signals (symbol, ts, source, action, confidence, price)"
        " VALUES ('AAPL', to_timestamp(%s::bigint / 1000.0), 'rules', 'buy', 0.5, %s::numeric)",
        (TS, text),
    )
    assert ok == can_store, f"price={price}: validates={ok} stored={can_store}"


@pytest.mark.parametrize(("reasons", "ok"), [('{"why": "rsi"}', True), ('{"why": "a\\u0000b"}', False)])
def test_signal_reasons_validate_exactly_when_jsonb_stores_them(db_url: str, reasons: str, ok: bool) -> None:
    fields = {
        b"v": b"1",
        b"symbol": b"AAPL",
        b"ts": TS.encode(),
        b"price": b"1",
        b"action": b"buy",
        b"confidence": b"0.5",
        b"source": b"rules",
        b"reasons": reasons.encode(),
    }
    assert validates(decode_signal, fields) == ok
    assert (
        stored(
            db_url,
            "INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)"
            " VALUES ('AAPL', to_timestamp(%s::bigint / 1000.0), 'rules', 'buy', 0.5, 1, %s::jsonb)",
            (TS, reasons),
        )
        == ok
    )
