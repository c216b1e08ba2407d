"""The small readings every service shares: stream ids, comma lists, interruptible sleeps."""

from __future__ import annotations

import asyncio
import time

import pytest

from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.settings import parse_symbol_list, split_list
from stocktrack_common.stream_ids import format_stream_id, next_stream_id, parse_stream_id


def test_stream_ids_compare_numerically_not_as_text() -> None:
    assert parse_stream_id("9-0") < parse_stream_id("10-0")
    assert parse_stream_id(b"5-12") > parse_stream_id("5-3")
    assert parse_stream_id("7") == (7, 0)
    assert format_stream_id(next_stream_id(parse_stream_id("5-2"))) == "5-3"
    assert next_stream_id((5, 2**64 - 1)) == (6, 0)


def test_stream_ids_reject_what_is_not_an_id() -> None:
    for bad in ("", "abc", "5-x", "-"):
        with pytest.raises(ValueError):
            parse_stream_id(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ("a", ["a"]),
        (" a , b,,c ,", ["a", "b", "c"]),
        (["x ", "", " y"], ["x", "y"]),
        (("x", 3), ["x", "3"]),
        (7, ["7"]),
        ("Mixed,CASE", ["Mixed", "CASE"]),
    ],
)
def test_split_list_strips_drops_empties_and_keeps_order_and_case(value: object, expected: list[str]) -> None:
    assert split_list(value) == expected


def test_symbol_lists_are_split_lists_upper_cased_deduplicated_and_checked() -> None:
    assert parse_symbol_list(" aapl, MSFT,,aapl ") == ["AAPL", "MSFT"]
    with pytest.raises(ValueError, match="invalid symbol"):
        parse_symbol_list("AAPL,no way")


async def test_sleep_or_stop_returns_when_stop_is_set() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    await sleep_or_stop(stop, 60)
    assert stop.is_set() and time.monotonic() - started < 30


async def test_sleep_or_stop_sleeps_the_full_time_without_a_stop() -> None:
    stop = asyncio.Event()
    started = time.monotonic()
    await sleep_or_stop(stop, 0.05)
    assert time.monotonic() - started >= 0.04 and not stop.is_set()
    await sleep_or_stop(stop, -1)  # a negative wait (a deadline already passed) returns at once
