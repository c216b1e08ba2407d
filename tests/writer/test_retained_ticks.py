"""The writer's decoders refuse a tick older than retention on both paths, and only such a tick."""

from __future__ import annotations

import datetime as dt

import pytest

from stocktrack_common.messages import MessageError
from writer.tick_sink import RetainedTicks

TODAY = dt.date(2026, 11, 30)
DAY_MS = 86_400_000


def ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def entry(ts: int) -> list[bytes]:
    return [
        b"v",
        b"1",
        b"symbol",
        b"AAPL",
        b"ts",
        str(ts).encode(),
        b"price",
        b"1.5",
        b"size",
        b"3",
        b"source",
        b"sim",
    ]


def fields(ts: int) -> dict[bytes, bytes]:
    flat = entry(ts)
    return dict(zip(flat[::2], flat[1::2], strict=True))


@pytest.mark.parametrize("retention_days", [3, 30, 36_500])
def test_the_first_kept_day_is_kept_and_the_day_before_refused(retention_days: int) -> None:
    ticks = RetainedTicks(retention_days, today=lambda: TODAY)
    first = TODAY - dt.timedelta(days=retention_days - 1)
    kept, old = ms(first), ms(first) - 1
    for ts in (kept, ms(TODAY) + 5):
        if ts <= 0:
            continue
        assert (
            ticks.decode_flat(entry(ts))
            == ticks.decode(fields(ts))
            == (b"AAPL", str(ts).encode(), b"1.5", b"3", b"sim", b"")
        )
    if old > 0:
        for decode in (lambda: ticks.decode_flat(entry(old)), lambda: ticks.decode(fields(old))):
            with pytest.raises(
                MessageError, match=f"older than tick retention.*oldest day kept is {first.isoformat()}"
            ):
                decode()


def test_ticks_of_other_digit_counts_are_judged_by_value() -> None:
    ticks = RetainedTicks(3, today=lambda: TODAY)
    # 12 digits (2001 and before) is older than the cut-off whatever its first digits.
    with pytest.raises(MessageError, match="older than tick retention"):
        ticks.decode_flat(entry(999_999_999_999))
    # 14 digits (year 5138): not old, so kept.
    assert ticks.decode_flat(entry(99_999_999_999_999)) is not None


def test_the_cut_off_moves_with_the_day() -> None:
    today = [TODAY]
    ticks = RetainedTicks(3, today=lambda: today[0])
    day_before_cut = ms(TODAY - dt.timedelta(days=2))
    assert ticks.decode_flat(entry(day_before_cut)) is not None
    today[0] = TODAY + dt.timedelta(days=1)
    ticks._refresh_at = 0.0  # the once-a-minute refresh is due
    with pytest.raises(MessageError):
        ticks.decode_flat(entry(day_before_cut))


def test_a_read_is_decoded_at_once_only_when_no_tick_is_too_old() -> None:
    ticks = RetainedTicks(3, today=lambda: TODAY)
    fresh = [entry(ms(TODAY) + k) for k in range(5)]
    old = entry(ms(TODAY - dt.timedelta(days=3)))
    assert ticks.decode_read(fresh) is None  # the cut-off is not known yet: each entry on its own
    rows = [ticks.decode_flat(e) for e in fresh]
    assert ticks.decode_read(fresh) == rows
    assert ticks.decode_read([*fresh, old]) is None
    assert ticks.decode_read([*fresh, entry(99_999_999_999_999)]) is None  # 14 digits: judged per entry
