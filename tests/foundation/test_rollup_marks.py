"""The roller loses no minute that a writer commits while it runs, and replicas share the work.

A writer's minute that the roller's recompute did not see must leave its mark behind, however
the two transactions interleave: the writer still uncommitted when the roller deletes the marks
it served, or committing between the roller's recompute and that delete (forced here by holding
a roll-up row the recompute must lock). Without it the minute would stay out of its roll-ups
until the janitor's reconciliation.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.bar_rollups import RollUpRound, roll_up_dirty
from tests.support.rollups import NO_DIFFERENCES, dirty_marks, roll_up, rollup_differences

BUCKET = dt.datetime(2026, 3, 2, 14, 5, tzinfo=dt.UTC)  # a 5-minute bucket


async def add_minute(conn: AsyncConnection, symbol: str, minute: int, price: int) -> None:
    bucket = BUCKET + dt.timedelta(minutes=minute)
    await conn.execute(
        "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
        " VALUES (%s, %s, %s, %s, %s, %s, 10, 1, %s, %s)",
        (symbol, bucket, price, price, price, price, bucket, bucket + dt.timedelta(seconds=59)),
    )


async def marked_minute_then_clean(pool: AsyncConnectionPool) -> None:
    """Minute 0 rolled up, minute 1 committed and marked: the roller has one bucket to claim."""
    async with pool.connection() as conn:
        await add_minute(conn, "AAPL", 0, 100)
        await roll_up(conn)
        await add_minute(conn, "AAPL", 1, 101)
    async with pool.connection() as conn:
        assert await dirty_marks(conn) == 1


async def test_a_writer_uncommitted_during_the_whole_round_keeps_its_mark(
    pg_pool: AsyncConnectionPool,
) -> None:
    await marked_minute_then_clean(pg_pool)
    async with pg_pool.connection() as writer, pg_pool.connection() as roller:
        await add_minute(writer, "AAPL", 2, 150)  # re-marks the bucket; not committed yet
        done = await roll_up_dirty(roller)
        # Minute 1 is rolled up; the mark, held by the writer, is left for the next round.
        assert done == RollUpRound(claimed=1, changed=4, served=0)
        await writer.commit()
        assert await rollup_differences(roller) != NO_DIFFERENCES
        assert await roll_up(roller) == 1
        assert await rollup_differences(roller) == NO_DIFFERENCES and await dirty_marks(roller) == 0


async def test_a_writer_committing_between_recompute_and_delete_keeps_its_mark(
    pg_pool: AsyncConnectionPool,
) -> None:
    await marked_minute_then_clean(pg_pool)
    async with (
        pg_pool.connection() as writer,
        pg_pool.connection() as roller,
        pg_pool.connection() as holder,
    ):
        # The recompute reads its minutes, then waits on this row lock to write the 5m bar.
        await holder.execute("SELECT 1 FROM bars_5m WHERE symbol = 'AAPL' FOR UPDATE")
        await add_minute(writer, "AAPL", 3, 90)
        rolling = asyncio.create_task(roll_up_dirty(roller))
        pid = roller.info.backend_pid
        for _ in range(500):
            cur = await holder.execute("SELECT cardinality(pg_blocking_pids(%s))", (pid,))
            row = await cur.fetchone()
            if row and row[0]:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the roller never reached the held roll-up row")
        await writer.commit()  # after the recompute's snapshot, before the roller's delete
        await holder.commit()
        done = await rolling
        assert done.claimed == 1 and done.served == 0
        assert await rollup_differences(roller) != NO_DIFFERENCES  # minute 3 is not in yet...
        assert await roll_up(roller) == 1  # ...and its mark says so
        assert await rollup_differences(roller) == NO_DIFFERENCES and await dirty_marks(roller) == 0


async def test_replicas_skip_the_symbols_another_is_rolling_up(pg_pool: AsyncConnectionPool) -> None:
    async with pg_pool.connection() as conn:
        for symbol in ("AAPL", "MSFT"):
            for minute in range(0, 12, 2):
                await add_minute(conn, symbol, minute, 100 + minute)
    async with pg_pool.connection() as other, pg_pool.connection() as roller:
        # Another replica's claim holds AAPL's recompute lock until it commits.
        await other.execute("SELECT pg_advisory_xact_lock(727002, hashtext('AAPL'))")
        done = await roll_up_dirty(roller)
        assert done == RollUpRound(claimed=3, changed=3 + 2 + 1 + 1, served=3)
        assert await dirty_marks(roller) == 3
        await other.commit()
        assert await roll_up(roller) == 3
        assert await rollup_differences(roller) == NO_DIFFERENCES and await dirty_marks(roller) == 0
