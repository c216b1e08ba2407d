"""Retention on real PostgreSQL: partitions dropped (not DELETEd), bars rolled up first, idempotent."""

from __future__ import annotations

import datetime as dt

import psycopg

from janitor.report import TaskReport
from stocktrack_common.partitions import partition_name
from tests.janitor.conftest import RunJanitor
from tests.janitor.tick_data import (
    expected_bars,
    fetch_bars,
    insert_bars,
    load_ticks,
    make_ticks,
    partition_names,
    tick_days_present,
    today_utc,
)


def only(reports: list[TaskReport]) -> TaskReport:
    assert len(reports) == 1
    assert reports[0].status == "ok", reports[0].error
    return reports[0]


async def test_retention_keeps_last_30_days_and_rolls_up_bars_of_dropped_days(
    db_url: str, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    days = [today - dt.timedelta(days=i) for i in range(39, -1, -1)]  # 40 days, oldest first
    ticks = make_ticks(days)
    load_ticks(db_url, ticks)
    bars = expected_bars(ticks)
    kept_days = days[-30:]
    dropped_days = days[:10]
    # The writer already built the bars of two of the dropped days; the roll-up must add only the rest.
    written = [bar for bar in bars.values() if bar[1].date() in dropped_days[-2:]]
    insert_bars(db_url, written)
    # Trade amendments go with their ticks' days: one of a dropped day, one of a kept day.
    with psycopg.connect(db_url, autocommit=True) as conn:
        for trade_id, day in (("V:1", dropped_days[-1]), ("V:2", kept_days[0])):
            conn.execute(
                "INSERT INTO trade_amendments (source, symbol, trade_id, kind, price, size, ts)"
                " VALUES ('alpaca', 'AAPL', %s, 'cancel', 1, 1, %s)",
                (trade_id, dt.datetime.combine(day, dt.time(15), tzinfo=dt.UTC)),
            )

    first = only(await run_janitor("retention", tick_retention_days=30))

    assert tick_days_present(db_url) == kept_days
    assert partition_names(db_url) == [partition_name(d) for d in kept_days]
    dropped_bars = {k: v for k, v in bars.items() if k[1].date() in dropped_days}
    stored = fetch_bars(db_url)
    assert {k: v for k, v in stored.items() if k[1].date() in dropped_days} == dropped_bars
    assert first.counts["partitions_dropped"] == 10
    assert first.counts["bars_rolled_up"] == len(dropped_bars) - len(written)
    assert first.counts["bars_deleted"] == 0
    assert first.counts["trade_amendments_deleted"] == 1
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT trade_id FROM trade_amendments").fetchall() == [("V:2",)]

    second = only(await run_janitor("retention", tick_retention_days=30))

    assert second.counts == {
        "partitions_dropped": 0,
        "bars_rolled_up": 0,
        "bars_deleted": 0,
        "trade_amendments_deleted": 0,
        "rollup_bars_deleted": 0,
        "rollup_bars_repaired": 0,
    }
    assert tick_days_present(db_url) == kept_days
    assert fetch_bars(db_url) == stored


async def test_old_bars_are_deleted_in_batches_and_not_rolled_up(
    db_url: str, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    days = [today - dt.timedelta(days=i) for i in range(39, -1, -1)]
    ticks = make_ticks(days)
    load_ticks(db_url, ticks)
    bars = expected_bars(ticks)
    too_old = [bar for bar in bars.values() if bar[1].date() < today - dt.timedelta(days=34)]
    insert_bars(db_url, too_old)

    report = only(
        await run_janitor("retention", tick_retention_days=30, bar_retention_days=35, retention_batch_size=7)
    )

    stored = fetch_bars(db_url)
    assert report.counts["bars_deleted"] == len(too_old)
    assert min(bucket.date() for _, bucket in stored) == today - dt.timedelta(days=34)
    # Days 30..34 ago were rolled up; days 35..39 ago are past bar retention and were not.
    assert report.counts["bars_rolled_up"] == len(stored) == 5 * len(bars) // 40


async def test_signals_and_daily_bars_kept_unless_configured(db_url: str, run_janitor: RunJanitor) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO signals (symbol, ts, source, action, confidence, price)"
            " VALUES ('AAPL', %s, 'rules', 'buy', 0.5, 1)",
            (old,),
        )
        conn.execute(
            "INSERT INTO daily_bars (symbol, day, open, high, low, close, volume, source)"
            " VALUES ('AAPL', %s, 1, 1, 1, 1, 1, 'csv')",
            (old.date(),),
        )

    kept = only(await run_janitor("retention"))
    assert "signals_deleted" not in kept.counts and "daily_bars_deleted" not in kept.counts

    pruned = only(await run_janitor("retention", signal_retention_days=365, daily_bar_retention_days=365))
    assert pruned.counts["signals_deleted"] == 1
    assert pruned.counts["daily_bars_deleted"] == 1


async def test_dry_run_changes_nothing(db_url: str, run_janitor: RunJanitor) -> None:
    today = today_utc()
    days = [today - dt.timedelta(days=i) for i in range(39, -1, -1)]
    ticks = make_ticks(days)
    load_ticks(db_url, ticks)
    partitions_before = partition_names(db_url)

    report = only(await run_janitor("retention", dry_run=True, tick_retention_days=30))

    assert report.dry_run
    assert report.counts["partitions_dropped"] == 10
    assert report.counts["bars_rolled_up"] == len(expected_bars(ticks)) // 4
    assert partition_names(db_url) == partitions_before
    assert tick_days_present(db_url) == days
    assert fetch_bars(db_url) == {}


async def test_half_detached_partition_is_finished_on_the_next_run(
    db_url: str, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    old_day, orphan_day = today - dt.timedelta(days=50), today - dt.timedelta(days=51)
    load_ticks(db_url, make_ticks([orphan_day, old_day, today]))
    with psycopg.connect(db_url, autocommit=True) as conn:
        # A crash between DETACH and DROP leaves a plain table behind; the next run must drop it.
        conn.execute(f"ALTER TABLE ticks DETACH PARTITION {partition_name(orphan_day)}")

    report = only(await run_janitor("retention"))

    assert report.counts["partitions_dropped"] == 2
    assert partition_names(db_url) == [partition_name(today)]
