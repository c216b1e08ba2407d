"""The flat-entry tick decoder (the tick consumers' fast path) never accepts what the dict path
would refuse, never reads a value from the wrong place, and takes every tick producers write."""

from __future__ import annotations

import random
from decimal import Decimal

from stocktrack_common.messages import (
    MAX_TS_MS,
    MessageError,
    Tick,
    tick_row,
    tick_row_of_entry,
    tick_rows_of_entries,
)

PRODUCED = [
    Tick(symbol="AAPL", ts=1_700_000_000_000, price=Decimal("189.25"), size=100, source="sim"),
    Tick(symbol="BRK.B", ts=1, price=Decimal("0.000000000001"), size=0, source="alpha_vantage"),
    Tick(
        symbol="S499",
        ts=99_999_999_999_999,
        price=Decimal("999999999999999.999999999999"),
        size=999_999_999_999,
        source="csv",
    ),
    Tick(
        symbol="X",
        ts=1_767_623_400_000,
        price=Decimal("10"),
        size=5,
        source="alpaca",
        trade="V:52983525029461",
    ),
]


def flat(tick: Tick) -> list[bytes]:
    """The entry as Redis returns it for a producer's XADD of `tick.to_fields()`."""
    return [part.encode() for pair in tick.to_fields().items() for part in pair]


def as_dict(entry: list[bytes]) -> dict[bytes, bytes]:
    pairs = iter(entry)
    return dict(zip(pairs, pairs, strict=True))


def dict_path(entry: list[bytes]) -> tuple[bytes, ...] | None:
    try:
        return tick_row(as_dict(entry))
    except MessageError:
        return None


def test_every_produced_tick_takes_the_fast_path_with_the_dict_paths_row() -> None:
    for tick in PRODUCED:
        entry = flat(tick)
        assert tick_row_of_entry(entry) == tick_row(as_dict(entry))


def test_what_the_fast_path_leaves_the_dict_path_decides() -> None:
    base = flat(PRODUCED[0])
    zero_price = [*base[:7], b"0.00", *base[8:]]
    huge_ts = [*base[:5], str(MAX_TS_MS).encode(), *base[6:]]
    past_max_ts = [*base[:5], str(MAX_TS_MS + 1).encode(), *base[6:]]
    reordered = [*base[2:4], *base[:2], *base[4:]]
    extra_field = [*base, b"note", b"x"]
    for entry, stored in [
        (zero_price, False),
        (huge_ts, True),  # 15 digits: valid, decided by the dict path
        (past_max_ts, False),
        (reordered, True),  # another producer's field order: valid, decided by the dict path
        (extra_field, False),
    ]:
        assert tick_row_of_entry(entry) is None
        assert (dict_path(entry) is not None) is stored


def test_a_tab_inside_a_value_cannot_shift_the_fields() -> None:
    base = flat(PRODUCED[0])
    # Joined, these spell a valid tick with its items shifted; the dict path refuses both.
    smuggled = [
        b"v",
        b"1\tsymbol\tAAPL",
        b"ts",
        b"1700000000000",
        b"price",
        b"1",
        b"size",
        b"1",
        b"source",
        b"sim",
        b"a",
        b"b",
    ]
    tabbed_symbol = [*base[:3], b"AA\tPL", *base[4:]]
    for entry in (smuggled, tabbed_symbol):
        assert tick_row_of_entry(entry) is None
        assert dict_path(entry) is None


def test_random_mutations_never_pass_the_fast_path_alone() -> None:
    """Soundness: whenever the fast path gives a row, the dict path gives the same row."""
    rng = random.Random(7)
    alphabet = [
        b"0",
        b"1",
        b"9",
        b".",
        b"-",
        b"\t",
        b"A",
        b"a",
        b" ",
        b":",
        b"",
        b"00",
        b"v",
        b"ts",
        b"trade",
    ]
    accepted = 0
    for _ in range(20_000):
        entry = list(flat(rng.choice(PRODUCED)))
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(entry))
            op = rng.random()
            if op < 0.4:
                entry[k] = entry[k] + rng.choice(alphabet)
            elif op < 0.7:
                entry[k] = rng.choice(alphabet) + entry[k][1:]
            elif op < 0.85:
                entry[k] = rng.choice(alphabet)
            else:
                entry[k], entry[-1] = entry[-1], entry[k]
        row = tick_row_of_entry(entry)
        if row is not None:
            accepted += 1
            assert row == dict_path(entry), entry
    assert accepted > 100  # the mutations left some valid ticks, so the comparison ran


def test_a_read_decodes_at_once_exactly_as_entry_by_entry() -> None:
    rng = random.Random(11)
    plain = [flat(t) for t in PRODUCED if t.trade is None]
    traded = [flat(t) for t in PRODUCED if t.trade is not None]
    for entries in ([rng.choice(plain) for _ in range(500)], [rng.choice(traded) for _ in range(50)]):
        assert tick_rows_of_entries(entries) == [tick_row_of_entry(e) for e in entries]


def test_a_read_with_any_odd_entry_is_left_to_the_entries() -> None:
    plain = flat(PRODUCED[0])
    shifted = [*plain[:10], b"sim\tv", b"1"]  # a tab inside a value, the length still 12
    for odd in ([*plain[:7], b"0", *plain[8:]], flat(PRODUCED[3]), [*plain, b"note", b"x"], shifted):
        assert tick_rows_of_entries([plain, odd, plain]) is None
    # Two entries whose items, joined, would spell three valid ones: the lengths give them away.
    first, second = flat(PRODUCED[0]), flat(PRODUCED[1])
    assert tick_rows_of_entries([first + second[:6], second[6:]]) is None
