"""Provider-neutral shapes: what a provider answered, before it becomes a published tick or a stored bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Quote:
    """One observation of a symbol's last price.

    `stamp` is the provider's own identity of the observation (its timestamp, a trade id, or for a
    provider without intraday time the trading day with price and volume): the same stamp seen
    twice is the same quote. `trade_size` is set when the observation is a single trade;
    `day_volume` when the provider only reports the cumulative volume of the trading day.
    `trade_id` is the provider's id of a single trade it may later correct or cancel.
    """

    symbol: str
    ts_ms: int
    price: Decimal
    source: str
    stamp: str
    day_volume: int | None = None
    trade_size: int | None = None
    trading_day: date | None = None
    trade_id: str | None = None


@dataclass(frozen=True)
class MinuteBar:
    symbol: str
    bucket: datetime  # bar start, timezone-aware UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int
    source: str
