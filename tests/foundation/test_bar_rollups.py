"""The roll-up tables (bars_5m, bars_15m, bars_1h, bars_1d) equal bars_1m rolled up per query,
whoever changes the minutes and however: the writer with shuffled, batched, redelivered and
concurrent ticks; direct inserts (backfill, the simulator's history); corrections that shrink a
minute, deletes (retention) and TRUNCATE; and `recompute_rollups` run on purpose.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from decimal import Decimal

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.bar_rollups import recompute_rollups
from stocktrack_common.bars import recompute_1m
from stocktrack_common.messages import TickRow
from tests.support.rollups import NO_DIFFERENCES, dirty_marks, roll_up, rollup_counts, rollup_differences
from writer.tick_sink import TickSink

# 23:10 UTC: the ticks run past midnight, so they span two UTC days, hours, 15 and 5 minutes.
START_MS = int(dt.datetime(2026, 3, 2, 23, 10, tzinfo=dt.UTC).timestamp() * 1000)
SPAN_MS = 110 * 60_000
SYMBOLS = ("AAPL", "BRK.B", "MSFT")


def make_rows(seed: int, n: int = 900) -> list[TickRow]:
    """Ticks on a coarse grid of times and prices, so equal (ts, price) ties happen across sources."""
    rng = random.Random(seed)
    rows: set[TickRow] = set()
    while len(rows) < n:
        symbol = rng.choice(SYMBOLS)
        ts = START_MS + rng.randrange(0, SPAN_MS // 30_000) * 30_000 + rng.choice((0, 29_999))
        price = Decimal(10_000 + rng.randrange(-400, 400)) / 100
        rows.add(
            (
                symbol.encode(),
                str(ts).encode(),
                format(price, "f").encode(),
                str(rng.randrange(1, 900)).encode(),
                rng.choice((b"sim", b"alpaca", b"finnhub")),
                b"",
            )
        )
    return sorted(rows)


async def test_writer_keeps_rollups_equal_to_minutes_whatever_the_order_batching_and_redelivery(
    pg_pool: AsyncConnectionPool,
) -> None:
    rows = make_rows(1)
    rng = random.Random(7)
    rng.shuffle(rows)
    cuts = sorted(rng.sample(range(1, len(rows)), 8))
    batches = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    sink = TickSink()
    sent: list[TickRow] = []
    for batch in batches:
        redelivered = rng.sample(sent, min(len(sent), 5))  # the SQL path, with stored ticks in the batch
        async with pg_pool.connection() as conn:
            await sink.write(conn, [*redelivered, *batch])
        sent += batch
    async with pg_pool.connection() as conn:
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES
        counts = await rollup_counts(conn)
        before = await _table_texts(conn)
        # A whole redelivered batch changes nothing, in bars_1m or in a roll-up.
        result = await sink.write(conn, batches[3])
        assert result.inserted == 0
        await roll_up(conn)
        assert await _table_texts(conn) == before and await dirty_marks(conn) == 0
    assert counts["1d"] == 2 * len(SYMBOLS) and counts["5m"] > counts["15m"] > counts["1h"] >= counts["1d"]


async def test_concurrent_writers_lose_and_double_nothing(pg_pool: AsyncConnectionPool) -> None:
    """Two writers merge batches of the same bars at once; each roll-up row ends as their sum."""
    rows = make_rows(2, 1200)
    random.Random(3).shuffle(rows)
    halves = [rows[0::2], rows[1::2]]

    async def write(part: list[TickRow]) -> None:
        sink = TickSink()
        for i in range(0, len(part), 50):
            async with pg_pool.connection() as conn:
                await sink.write(conn, part[i : i + 50])

    await asyncio.gather(*(write(h) for h in halves))
    async with pg_pool.connection() as conn:
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES


async def test_direct_changes_to_minutes_update_the_rollups(pg_pool: AsyncConnectionPool) -> None:
    async with pg_pool.connection() as conn:
        # A backfill-style insert of whole minutes, then more minutes of the same buckets.
        await conn.execute(
            """
            INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
            SELECT s, b, 100 + i % 7, 102.50 + i % 5, 98.25 - i % 3, 101.125 + i % 11, 10 * i, 1 + i % 4,
                   b + interval '1 second', b + interval '58 seconds'
            FROM unnest(ARRAY['AAPL', 'MSFT']) AS s, generate_series(0, 1500, 2) AS i,
                 LATERAL (SELECT timestamptz '2026-03-02 12:00Z' + i * interval '1 minute') AS t(b)
            """
        )
        await conn.execute(
            """
            INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
            SELECT 'AAPL', b, 90.5, 91, 90, 90.75, 3, 1, b, b + interval '59 seconds'
            FROM generate_series(1, 1501, 2) AS i,
                 LATERAL (SELECT timestamptz '2026-03-02 12:00Z' + i * interval '1 minute') AS t(b)
            """
        )
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES
        # A correction that shrinks minutes (high down, close moved earlier): recomputed, not merged.
        await conn.execute(
            "UPDATE bars_1m SET high = high - 3, volume = volume - 1, close = open, last_ts = first_ts"
            " WHERE symbol = 'AAPL' AND bucket BETWEEN '2026-03-02 12:00Z' AND '2026-03-02 13:31Z'"
        )
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES
        # Retention-style deletes: a whole hour and scattered minutes.
        await conn.execute(
            "DELETE FROM bars_1m WHERE bucket >= '2026-03-02 14:00Z' AND bucket < '2026-03-02 15:00Z'"
        )
        await conn.execute(
            "DELETE FROM bars_1m WHERE symbol = 'MSFT' AND extract(minute FROM bucket)::int % 9 = 0"
        )
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES
        assert (await rollup_counts(conn))["1d"] == 4
        await conn.execute("TRUNCATE bars_1m")
        assert await rollup_counts(conn) == {"5m": 0, "15m": 0, "1h": 0, "1d": 0}


async def test_recompute_rollups_repairs_a_range_and_reports_what_it_changed(
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
            SELECT 'AAPL', b, 100, 101, 99, 100.5, 10, 2, b, b + interval '59 seconds'
            FROM generate_series(0, 179) AS i,
                 LATERAL (SELECT timestamptz '2026-03-02 09:00Z' + i * interval '1 minute') AS t(b)
            """
        )
        assert await roll_up(conn) == 36
        await conn.execute("UPDATE bars_5m SET close = 1 WHERE bucket = '2026-03-02 10:05Z'")
        await conn.execute("DELETE FROM bars_15m WHERE bucket = '2026-03-02 10:00Z'")
        stray = (
            "INSERT INTO bars_1h SELECT 'AAPL', timestamptz '2026-03-02 20:00Z', 1, 1, 1, 1, 1, 1,"
            " timestamptz '2026-03-02 20:00Z', timestamptz '2026-03-02 20:00Z'"
        )
        await conn.execute(stray)
        assert await rollup_differences(conn) != NO_DIFFERENCES
        start = dt.datetime(2026, 3, 2, 10, 3, tzinfo=dt.UTC)
        # Only the buckets overlapping the range are recomputed, each from the level below: the
        # 5m and 15m rows are repaired, the stray hour (outside the range) stays and so the day
        # recomputed from the hours takes it in.
        assert await recompute_rollups(conn, "AAPL", start, start + dt.timedelta(minutes=4)) == 3
        differences = await rollup_differences(conn)
        assert [len(differences[i]) for i in ("5m", "15m", "1h", "1d")] == [0, 0, 1, 2]
        day = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
        assert await recompute_rollups(conn, "AAPL", day, day + dt.timedelta(days=1)) == 2
        assert await rollup_differences(conn) == NO_DIFFERENCES
        assert await recompute_rollups(conn, "AAPL", day, day + dt.timedelta(days=1)) == 0


async def _table_texts(conn: AsyncConnection) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for table in ("bars_1m", "bars_5m", "bars_15m", "bars_1h", "bars_1d"):
        cur = await conn.execute(
            f"SELECT '{table}', symbol, bucket, open::text, high::text, low::text,"
            f" close::text, volume, trades, first_ts, last_ts FROM {table} ORDER BY 2, 3"
        )
        rows += await cur.fetchall()
    return rows


async def test_rebuilt_minutes_after_trade_corrections_carry_into_the_rollups(
    pg_pool: AsyncConnectionPool,
) -> None:
    """`recompute_1m` (trade corrections and cancels) deletes and rebuilds minutes: the roll-ups follow."""
    rows = make_rows(4, 400)
    async with pg_pool.connection() as conn:
        await TickSink().write(conn, rows)
        cur = await conn.execute(
            "SELECT symbol, ts FROM ticks ORDER BY price DESC, symbol, ts, source LIMIT 6"
        )
        highest = await cur.fetchall()
        # Correct the highest trades down, and cancel one tick that is alone in its minute if any.
        await conn.execute(
            "UPDATE ticks SET price = price - 1, size = size + 1 WHERE (symbol, ts) IN (SELECT * FROM unnest(%s::text[], %s::timestamptz[]))",
            ([s for s, _ in highest], [t for _, t in highest]),
        )
        await conn.execute("DELETE FROM ticks WHERE (symbol, ts) = (%s, %s)", highest[0])
        keys = {(s, int(t.timestamp() * 1000) // 60_000 * 60_000) for s, t in highest}
        await recompute_1m(conn, keys)
        assert await roll_up(conn) > 0
        assert await rollup_differences(conn) == NO_DIFFERENCES
