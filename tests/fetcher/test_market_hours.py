"""Market hours come from the exchange calendar (holidays, early closes), not from a list kept here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fetcher.market_hours import MarketHours


@pytest.fixture(scope="module")
def regular() -> MarketHours:
    return MarketHours("XNYS", "regular")


@pytest.fixture(scope="module")
def extended() -> MarketHours:
    return MarketHours("XNYS", "extended")


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_regular_session(regular: MarketHours) -> None:
    assert regular.is_open(utc(2024, 5, 10, 14, 0))  # Friday 10:00 EDT
    assert not regular.is_open(utc(2024, 5, 10, 13, 29))  # 09:29 EDT
    assert regular.is_open(utc(2024, 5, 10, 20, 0))  # 16:00 EDT: the closing auction's print
    assert regular.is_open(utc(2024, 5, 10, 20, 1))
    assert not regular.is_open(utc(2024, 5, 10, 20, 2))  # closed two minutes after the bell
    assert not regular.is_open(utc(2024, 5, 11, 15, 0))  # Saturday


def test_holidays_and_early_closes(regular: MarketHours, extended: MarketHours) -> None:
    assert not regular.is_open(utc(2024, 7, 4, 15, 0))  # Independence Day
    assert regular.is_open(utc(2024, 7, 3, 16, 59))  # early close at 13:00 EDT
    assert regular.is_open(utc(2024, 7, 3, 17, 0))  # the early close's print
    assert not regular.is_open(utc(2024, 7, 3, 17, 2))
    assert extended.is_open(utc(2024, 7, 3, 20, 59))  # after-hours until 17:00 EDT that day
    assert not extended.is_open(utc(2024, 7, 3, 21, 0))
    assert not extended.is_open(utc(2024, 7, 4, 12, 0))


def test_extended_session(extended: MarketHours) -> None:
    assert extended.is_open(utc(2024, 5, 10, 8, 0))  # 04:00 EDT pre-market
    assert not extended.is_open(utc(2024, 5, 10, 7, 59))
    assert extended.is_open(utc(2024, 5, 10, 23, 59))  # 19:59 EDT after-hours
    assert not extended.is_open(utc(2024, 5, 11, 0, 0))


def test_seconds_until_open(regular: MarketHours) -> None:
    friday_close = utc(2024, 5, 10, 20, 2)  # after the closing print
    monday_open = utc(2024, 5, 13, 13, 30)
    assert regular.seconds_until_open(friday_close) == (monday_open - friday_close).total_seconds()
    assert regular.seconds_until_open(utc(2024, 5, 10, 15, 0)) == 0


def test_always_ignores_the_calendar() -> None:
    assert MarketHours("XNYS", "always").is_open(utc(2024, 12, 25, 3, 0))
