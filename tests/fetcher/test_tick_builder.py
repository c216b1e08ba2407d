"""Stale quotes, duplicates and cumulative volume: what becomes a tick and with which size."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fetcher.quotes import Quote
from fetcher.tick_builder import TickBuilder


def q(
    ts: int,
    price: str,
    stamp: str,
    source: str = "p",
    day_volume: int | None = None,
    day: date | None = None,
    trade_size: int | None = None,
) -> Quote:
    return Quote(
        "AAPL",
        ts,
        Decimal(price),
        source,
        stamp,
        day_volume=day_volume,
        trading_day=day,
        trade_size=trade_size,
    )


def test_same_quote_polled_twice_is_one_tick() -> None:
    builder = TickBuilder()
    assert builder.to_tick(q(1000, "10", "t1")) is not None
    assert builder.to_tick(q(1000, "10", "t1")) is None


def test_unchanged_provider_time_is_stale_even_with_a_new_stamp() -> None:
    builder = TickBuilder()
    assert builder.to_tick(q(2000, "10", "a")) is not None
    assert builder.to_tick(q(2000, "10.5", "b")) is None
    assert builder.to_tick(q(1500, "10.5", "c")) is None
    tick = builder.to_tick(q(2500, "10.5", "d"))
    assert tick is not None and tick.ts == 2500


def test_cumulative_day_volume_becomes_per_tick_size() -> None:
    builder = TickBuilder()
    d1, d2 = date(2024, 5, 9), date(2024, 5, 10)
    first = builder.to_tick(q(1, "10", "a", day_volume=1000, day=d1))
    assert first is not None and first.size == 0  # nothing known before the first observation
    second = builder.to_tick(q(2, "10", "b", day_volume=1300, day=d1))
    assert second is not None and second.size == 300
    correction = builder.to_tick(q(3, "10", "c", day_volume=1200, day=d1))
    assert correction is not None and correction.size == 0  # a provider correction never goes negative
    new_day = builder.to_tick(q(4, "10", "d", day_volume=500, day=d2))
    assert new_day is not None and new_day.size == 500  # traded since the open of the new day


def test_volume_baseline_is_per_provider() -> None:
    builder = TickBuilder()
    d = date(2024, 5, 10)
    builder.to_tick(q(1, "10", "a", source="p1", day_volume=1000, day=d))
    other = builder.to_tick(q(2, "10", "b", source="p2", day_volume=900_000, day=d))
    assert other is not None and other.size == 0 and other.source == "p2"


def test_trades_keep_volume_and_order_when_times_collide() -> None:
    builder = TickBuilder()
    ticks = [builder.to_tick(q(5000, "10", f"id{i}", trade_size=i + 1)) for i in range(3)]
    assert [t.ts for t in ticks if t] == [5000, 5001, 5002]
    assert [t.size for t in ticks if t] == [1, 2, 3]
    assert builder.to_tick(q(5000, "10", "id1", trade_size=2)) is None  # same trade id again
