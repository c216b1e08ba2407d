"""`retention` ends by reconciling the bar roll-ups with bars_1m: a corrupted, a missing and a
stray roll-up row are repaired and counted, a dry run only counts, and older roll-ups follow the
minute bars out at BAR_RETENTION_DAYS."""

from __future__ import annotations

import datetime as dt

from psycopg_pool import AsyncConnectionPool

from tests.janitor.conftest import RunJanitor
from tests.janitor.tick_data import today_utc
from tests.support.rollups import NO_DIFFERENCES, roll_up, rollup_counts, rollup_differences

MINUTES = """
INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT s, b, 100 + i %% 7, 101 + i %% 5, 99 - i %% 3, 100.5 + i %% 11, 10 + i, 1 + i %% 4, b, b + interval '59 seconds'
FROM unnest(ARRAY['AAPL', 'MSFT']) AS s, generate_series(0, 299) AS i,
     LATERAL (SELECT %s::timestamptz + i * interval '1 minute') AS t(b)
"""


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def test_retention_repairs_corrupted_rollups_and_counts_them(
    pg_pool: AsyncConnectionPool, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    async with pg_pool.connection() as conn:
        await conn.execute(MINUTES, (day_start(today),))
        await conn.execute(MINUTES, (day_start(today - dt.timedelta(days=1)) + dt.timedelta(hours=18),))
        await roll_up(conn)
        yesterday_evening = day_start(today - dt.timedelta(days=1)) + dt.timedelta(hours=21)
        # Changes no trigger sees: roll-up rows edited, deleted and invented by hand.
        await conn.execute(
            "UPDATE bars_1h SET close = close + 1, volume = 0 WHERE symbol = 'AAPL' AND bucket = %s",
            (yesterday_evening,),
        )
        await conn.execute("DELETE FROM bars_5m WHERE symbol = 'MSFT' AND bucket = %s", (day_start(today),))
        await conn.execute(
            "INSERT INTO bars_15m SELECT 'MSFT', b, 1, 1, 1, 1, 1, 1, b, b FROM (SELECT %s::timestamptz) AS t(b)",
            (day_start(today) + dt.timedelta(hours=12),),
        )
        assert await rollup_differences(conn) != NO_DIFFERENCES

    dry = (await run_janitor("retention", dry_run=True))[0]
    assert dry.status == "ok" and dry.counts["rollup_bars_repaired"] == 3
    async with pg_pool.connection() as conn:
        assert await rollup_differences(conn) != NO_DIFFERENCES

    report = (await run_janitor("retention"))[0]
    assert report.status == "ok"
    assert report.counts["rollup_bars_repaired"] == 3
    async with pg_pool.connection() as conn:
        assert await rollup_differences(conn) == NO_DIFFERENCES
    again = (await run_janitor("retention"))[0]
    assert again.counts["rollup_bars_repaired"] == 0


async def test_rollups_follow_minute_bars_out_at_bar_retention(
    pg_pool: AsyncConnectionPool, run_janitor: RunJanitor
) -> None:
    today = today_utc()
    async with pg_pool.connection() as conn:
        for age in (0, 5, 12):
            await conn.execute(MINUTES, (day_start(today - dt.timedelta(days=age)),))
        await roll_up(conn)
        assert (await rollup_counts(conn))["1d"] == 6

    report = (await run_janitor("retention", bar_retention_days=10, retention_batch_size=137))[0]

    assert report.status == "ok" and report.counts["bars_deleted"] == 600
    async with pg_pool.connection() as conn:
        assert await rollup_differences(conn) == NO_DIFFERENCES
        assert await rollup_counts(conn) == {"5m": 240, "15m": 80, "1h": 20, "1d": 4}
        cur = await conn.execute("SELECT min(bucket) FROM bars_5m")
        row = await cur.fetchone()
        assert row is not None and row[0] >= day_start(today - dt.timedelta(days=9))
