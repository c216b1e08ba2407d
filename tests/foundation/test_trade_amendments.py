"""Trade corrections and cancels, applied by the writer's code to stored ticks and bars (real PostgreSQL).

What the writer process runs per batch: `TickSink.write` for a tick shard, `trade_amendments.write`
for the amendments stream. A correction changes the stored tick and its minute's bar; a cancel
removes the tick and rebuilds the bar (gone when its minute is left empty); a redelivered
amendment changes nothing; an amendment that arrives before its trade is applied when the trade
is stored; a trade redelivered after its cancel stays cancelled.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.bars import MINUTE_MS
from stocktrack_common.messages import TickRow, TradeAmendment
from writer import trade_amendments
from writer.tick_sink import TickSink

T0 = 1_790_000_040_000  # a minute boundary
SYMBOL = "AAPL"


def trade(ts: int, price: str, size: int, trade_id: str, symbol: str = SYMBOL) -> TickRow:
    return (
        symbol.encode(),
        str(ts).encode(),
        price.encode(),
        str(size).encode(),
        b"alpaca",
        trade_id.encode(),
    )


def correction(trade_id: str, corrected: str, price: str, size: int) -> TradeAmendment:
    return TradeAmendment(
        kind="correction",
        symbol=SYMBOL,
        ts=T0 + 5 * MINUTE_MS,
        price=Decimal(price),
        size=size,
        source="alpaca",
        trade=trade_id,
        corrected_trade=corrected,
    )


def cancel(trade_id: str, price: str = "1", size: int = 0) -> TradeAmendment:
    return TradeAmendment(
        kind="cancel",
        symbol=SYMBOL,
        ts=T0 + 5 * MINUTE_MS,
        price=Decimal(price),
        size=size,
        source="alpaca",
        trade=trade_id,
    )


# Minute 0: three trades (open 10.00, high 10.50, close 10.20); minute 1: one trade.
TRADES = [
    trade(T0 + 1_000, "10.00", 100, "V:1"),
    trade(T0 + 2_000, "10.50", 50, "V:2"),
    trade(T0 + 3_000, "10.20", 10, "V:3"),
    trade(T0 + MINUTE_MS + 500, "10.30", 7, "V:4"),
]


async def ticks(conn: AsyncConnection) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT (extract(epoch FROM ts) * 1000)::bigint, price, size, trade_id FROM ticks ORDER BY ts"
    )
    return await cur.fetchall()


async def bars(conn: AsyncConnection) -> dict[int, tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT (extract(epoch FROM bucket) * 1000)::bigint, open, high, low, close, volume, trades,"
        " (extract(epoch FROM first_ts) * 1000)::bigint, (extract(epoch FROM last_ts) * 1000)::bigint"
        " FROM bars_1m WHERE symbol = %s ORDER BY bucket",
        (SYMBOL,),
    )
    return {int(row[0]): tuple(row[1:]) for row in await cur.fetchall()}


async def amendments(conn: AsyncConnection) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT trade_id, kind, applied_at IS NOT NULL FROM trade_amendments ORDER BY trade_id"
    )
    return await cur.fetchall()


def D(text: str) -> Decimal:
    return Decimal(text)


async def test_a_correction_changes_the_stored_tick_and_its_bar_and_a_redelivery_nothing(
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        await TickSink().write(conn, TRADES)
        assert (await bars(conn))[T0] == (
            D("10.00"),
            D("10.50"),
            D("10.00"),
            D("10.20"),
            160,
            3,
            T0 + 1_000,
            T0 + 3_000,
        )

        new, applied = await trade_amendments.write(conn, [correction("V:2", "V:12", "10.05", 40)])
        assert (new, applied) == (1, trade_amendments.Applied(ticks=1, bars=1))
        assert (await ticks(conn))[1] == (T0 + 2_000, D("10.05"), 40, "V:12")
        after = await bars(conn)
        assert after[T0] == (D("10.00"), D("10.20"), D("10.00"), D("10.20"), 150, 3, T0 + 1_000, T0 + 3_000)
        assert after[T0 + MINUTE_MS] == (
            D("10.30"),
            D("10.30"),
            D("10.30"),
            D("10.30"),
            7,
            1,
            T0 + 60_500,
            T0 + 60_500,
        )

        stored = (await ticks(conn), after, await amendments(conn))
        new, applied = await trade_amendments.write(conn, [correction("V:2", "V:12", "10.05", 40)])
        assert (new, applied) == (0, trade_amendments.Applied())
        assert (await ticks(conn), await bars(conn), await amendments(conn)) == stored


async def test_a_cancel_removes_the_tick_and_rebuilds_the_bar_which_goes_with_its_last_tick(
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        await TickSink().write(conn, TRADES)
        _, applied = await trade_amendments.write(
            conn, [cancel("V:3", "10.20", 10), cancel("V:4", "10.30", 7)]
        )
        assert applied == trade_amendments.Applied(ticks=2, bars=2)
        assert [t[3] for t in await ticks(conn)] == ["V:1", "V:2"]
        # The close moves back to the last remaining trade; minute 1 had only the cancelled one.
        assert await bars(conn) == {
            T0: (D("10.00"), D("10.50"), D("10.00"), D("10.50"), 150, 2, T0 + 1_000, T0 + 2_000)
        }
        stored = (await ticks(conn), await bars(conn))
        assert await trade_amendments.write(conn, [cancel("V:3", "10.20", 10)]) == (
            0,
            trade_amendments.Applied(),
        )
        assert (await ticks(conn), await bars(conn)) == stored


async def test_an_amendment_before_its_trade_waits_and_is_applied_as_the_trade_is_stored(
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        early = [correction("V:2", "V:12", "10.05", 40), cancel("V:3")]
        assert await trade_amendments.write(conn, early) == (2, trade_amendments.Applied())
        assert await amendments(conn) == [("V:2", "correction", False), ("V:3", "cancel", False)]

        result = await TickSink().write(conn, TRADES)
        assert result.amended == trade_amendments.Applied(ticks=2, bars=1)
        assert [(t[1], t[2], t[3]) for t in await ticks(conn)] == [
            (D("10.00"), 100, "V:1"),
            (D("10.05"), 40, "V:12"),
            (D("10.30"), 7, "V:4"),
        ]
        assert (await bars(conn))[T0] == (
            D("10.00"),
            D("10.05"),
            D("10.00"),
            D("10.05"),
            140,
            2,
            T0 + 1_000,
            T0 + 2_000,
        )
        assert await amendments(conn) == [("V:2", "correction", True), ("V:3", "cancel", True)]


async def test_a_trade_redelivered_after_its_cancel_stays_cancelled(pg_pool: AsyncConnectionPool) -> None:
    sink = TickSink()
    async with pg_pool.connection() as conn:
        await sink.write(conn, TRADES)
        await trade_amendments.write(conn, [cancel("V:3"), correction("V:1", "V:11", "9.90", 100)])
        stored = (await ticks(conn), await bars(conn))
        # The whole batch again (stored rows conflict: the staging path), then the cancelled
        # trade alone (nothing conflicts: the COPY path); and the corrected trade's original.
        for batch in (TRADES, [TRADES[2]], [TRADES[0]]):
            await sink.write(conn, batch)
            assert (await ticks(conn), await bars(conn)) == stored


async def test_a_correction_then_a_cancel_of_the_corrected_trade_arriving_first_remove_it(
    pg_pool: AsyncConnectionPool,
) -> None:
    async with pg_pool.connection() as conn:
        await trade_amendments.write(conn, [correction("V:1", "V:11", "9.90", 100), cancel("V:11")])
        result = await TickSink().write(conn, TRADES[:1])
        assert result.amended == trade_amendments.Applied(ticks=2, bars=1)
        assert await ticks(conn) == [] and await bars(conn) == {}
