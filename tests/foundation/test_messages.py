"""Tick and signal validation: every malformed case is rejected with a reason that names it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stocktrack_common.messages import (
    MessageError,
    Signal,
    Tick,
    TradeAmendment,
    decode_amendment,
    decode_signal,
    decode_tick,
    signal_fields,
    tick_row,
)

GOOD = {
    b"v": b"1",
    b"symbol": b"AAPL",
    b"ts": b"1700000000000",
    b"price": b"189.25",
    b"size": b"100",
    b"source": b"sim",
}


def with_(**changes: bytes | None) -> dict[bytes, bytes]:
    fields = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            fields.pop(key.encode())
        else:
            fields[key.encode()] = value
    return fields


def test_good_tick_round_trips() -> None:
    tick = decode_tick(GOOD)
    assert tick == Tick(symbol="AAPL", ts=1_700_000_000_000, price=Decimal("189.25"), size=100, source="sim")
    assert decode_tick({k.encode(): v.encode() for k, v in tick.to_fields().items()}) == tick


def test_a_trade_id_rides_along_on_both_decode_paths() -> None:
    tick = Tick(symbol="AAPL", ts=1, price=Decimal("1.5"), size=3, source="alpaca", trade="V:52983525029461")
    fields = {k.encode(): v.encode() for k, v in tick.to_fields().items()}
    assert fields[b"trade"] == b"V:52983525029461" and decode_tick(fields) == tick
    assert tick_row(fields)[5] == b"V:52983525029461"
    assert tick_row(GOOD)[5] == b"" and b"trade" not in {k.encode() for k in decode_tick(GOOD).to_fields()}
    with pytest.raises(MessageError, match="trade: String should match pattern"):
        tick_row(with_(trade=b"V 1"))


def test_amendments_round_trip_and_name_what_is_wrong() -> None:
    correction = TradeAmendment(
        kind="correction",
        symbol="AAPL",
        ts=5,
        price=Decimal("183.01"),
        size=100,
        source="alpaca",
        trade="V:1",
        corrected_trade="V:11",
    )
    fields = {k.encode(): v.encode() for k, v in correction.to_fields().items()}
    assert decode_amendment(fields) == correction
    cancel = {**fields, b"kind": b"cancel"}
    with pytest.raises(MessageError, match="corrected_trade is required for a correction and refused"):
        decode_amendment(cancel)
    del cancel[b"corrected_trade"]
    assert decode_amendment(cancel).kind == "cancel"
    with pytest.raises(MessageError, match="kind: Input should be 'correction' or 'cancel'"):
        decode_amendment({**cancel, b"kind": b"bust"})
    with pytest.raises(MessageError, match="trade: missing field"):
        decode_amendment({k: v for k, v in cancel.items() if k != b"trade"})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (with_(price=None), "price: missing field"),
        (with_(symbol=None), "symbol: missing field"),
        (with_(ts=None), "ts: missing field"),
        (with_(v=None), "missing field: v"),
        (with_(symbol=b"aapl"), "symbol: String should match pattern"),
        (with_(symbol=b"AAPL;DROP TABLE"), "symbol: String should match pattern"),
        (with_(symbol=b""), "symbol: String should match pattern"),
        (with_(price=b"-1.5"), "price: Input should be greater than 0"),
        (with_(price=b"0"), "price: Input should be greater than 0"),
        (with_(price=b"NaN"), "price must be finite"),
        (with_(price=b"Infinity"), "price must be finite"),
        (with_(price=b"abc"), "price is not a decimal"),
        (with_(ts=b"yesterday"), "ts is not integer epoch milliseconds"),
        (with_(ts=b"1.5e12"), "ts is not integer epoch milliseconds"),
        (with_(size=b"-3"), "size: Input should be greater than or equal to 0"),
        (with_(v=b"2"), "unknown schema version: '2'"),
        (with_(extra=b"x"), "extra: Extra inputs are not permitted"),
        (with_(source=b"bad source\t"), "source: String should match pattern"),
    ],
)
def test_malformed_tick_is_rejected_with_reason(fields: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(MessageError) as info:
        decode_tick(fields)
    assert reason in info.value.reason


def test_signal_round_trips_with_reasons() -> None:
    signal = Signal(
        symbol="MSFT",
        ts=1,
        price=Decimal("10"),
        action="buy",
        confidence=0.75,
        source="model:m-1",
        reasons={"rsi": {"value": 25.1, "fired": True}},
    )
    decoded = decode_signal({k.encode(): v.encode() for k, v in signal.to_fields().items()})
    assert decoded == signal


def test_signal_fields_built_without_the_model_decode_to_the_signal() -> None:
    """The recommender's path: fields straight from its values, the same as the validated model's."""
    values = {
        "symbol": "BRK.B",
        "ts": 1_700_000_000_000,
        "price": Decimal("412.3050"),
        "action": "hold",
        "confidence": 0.333333,
        "source": "rules",
        "reasons": {"rules": [], "indicators": {"rsi": 51.2, "macd": None}, "bar": {"open": "412.1"}},
    }
    fields = signal_fields(**values)  # type: ignore[arg-type]
    assert fields == Signal(**values).to_fields()  # type: ignore[arg-type]
    assert decode_signal({k.encode(): v.encode() for k, v in fields.items()}) == Signal(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"action": "moon"}, "action"),
        ({"confidence": "1.5"}, "confidence"),
        ({"source": "oracle"}, "source"),
        ({"reasons": "{not json"}, "reasons is not JSON"),
    ],
)
def test_malformed_signal_is_rejected(change: dict[str, str], reason: str) -> None:
    fields = {
        "v": "1",
        "symbol": "MSFT",
        "ts": "1",
        "price": "10",
        "action": "buy",
        "confidence": "0.5",
        "source": "rules",
        "reasons": "{}",
    } | change
    with pytest.raises(MessageError) as info:
        decode_signal(fields)
    assert reason in info.value.reason
