"""When the market is open, from a maintained exchange calendar (exchange_calendars).

Holidays and early closes come from the library, not from a list kept here. The extended
session is the US pre-market and after-hours window: from 5.5 hours before the regular open
(04:00 ET) to 4 hours after the close (20:00 ET; 17:00 on early-close days), on session days. The regular window runs `CLOSING_PRINT_GRACE` past the close: the closing
auction's print is published just after the closing bell, and a poll stopped at 16:00:00
would miss the day's official close.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import exchange_calendars as xcals
import pandas as pd

PRE_MARKET = timedelta(hours=5, minutes=30)
AFTER_HOURS = timedelta(hours=4)
NO_SESSION_AHEAD = timedelta(days=7)
CLOSING_PRINT_GRACE = timedelta(minutes=2)


class MarketHours:
    def __init__(self, calendar: str = "XNYS", session: str = "regular") -> None:
        if session not in ("regular", "extended", "always"):
            raise ValueError(f"unknown session {session!r}")
        self.calendar_name = calendar
        self.session = session

    @cached_property
    def _calendar(self) -> Any:
        with warnings.catch_warnings():
            # exchange_calendars reads Series.values, which pandas 3 deprecates; nothing for us to change.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return xcals.get_calendar(self.calendar_name)

    def _windows(self, around: datetime) -> list[tuple[datetime, datetime]]:
        cal = self._calendar
        first = max(pd.Timestamp(around.date()) - pd.Timedelta(days=3), cal.first_session)
        last = min(pd.Timestamp(around.date()) + pd.Timedelta(days=10), cal.last_session)
        if first > last:
            return []
        sessions = cal.sessions_in_range(first, last)
        opens = cal.opens.loc[sessions]
        closes = cal.closes.loc[sessions]
        windows = []
        for open_, close in zip(opens, closes, strict=True):
            start, end = open_.to_pydatetime(), close.to_pydatetime()
            if self.session == "extended":
                start, end = start - PRE_MARKET, end + AFTER_HOURS
            else:
                end = end + CLOSING_PRINT_GRACE
            windows.append((start, end))
        return windows

    def session_close(self, day: date) -> datetime | None:
        """The regular close of `day`'s session (13:00 ET on early-close days); None if no session."""
        cal = self._calendar
        session = pd.Timestamp(day)
        if not cal.first_session <= session <= cal.last_session or not cal.is_session(session):
            return None
        return cal.session_close(session).to_pydatetime()

    def is_open(self, when: datetime) -> bool:
        if self.session == "always":
            return True
        when = when.astimezone(UTC)
        return any(start <= when < end for start, end in self._windows(when))

    def seconds_until_open(self, when: datetime) -> float:
        """0 when open; otherwise the wait until the next window (a week if the calendar ends)."""
        if self.is_open(when):
            return 0.0
        when = when.astimezone(UTC)
        upcoming = [start for start, _ in self._windows(when) if start > when]
        if not upcoming:
            return NO_SESSION_AHEAD.total_seconds()
        return (min(upcoming) - when).total_seconds()
