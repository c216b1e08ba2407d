"""Persist a batch of ticks and fold them into 1-minute bars, idempotently, in one transaction.

The batch is COPYed into a temporary table, inserted into `ticks` with ON CONFLICT DO NOTHING,
and only the rows that were really inserted (RETURNING) are aggregated into `bars_1m`. A
redelivered batch therefore inserts nothing and adds nothing to any bar: volume and trade
counts are never counted twice. Bars keep the times of their open and close ticks so that
batches arriving out of order still merge to the right open and close.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from psycopg import AsyncConnection

from stocktrack_common.messages import Tick
from stocktrack_common.partitions import ensure_tick_partitions

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS tick_stage (
    symbol text, ts_ms bigint, price numeric, size bigint, source text
) ON COMMIT DELETE ROWS
"""

INSERT_AND_ROLL_UP = """
WITH inserted AS (
    INSERT INTO ticks (symbol, ts, price, size, source)
    SELECT symbol, timestamptz 'epoch' + ts_ms * interval '1 millisecond', price, size, source
    FROM tick_stage
    ON CONFLICT DO NOTHING
    RETURNING symbol, ts, price, size
), per_minute AS (
    SELECT symbol, date_trunc('minute', ts) AS bucket,
           (array_agg(price ORDER BY ts))[1] AS open,
           max(price) AS high, min(price) AS low,
           (array_agg(price ORDER BY ts DESC))[1] AS close,
           sum(size) AS volume, count(*) AS trades,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM inserted GROUP BY 1, 2
), bars AS (
    INSERT INTO bars_1m AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
    SELECT symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts FROM per_minute
    ON CONFLICT (symbol, bucket) DO UPDATE SET
        open = CASE WHEN excluded.first_ts < b.first_ts THEN excluded.open ELSE b.open END,
        close = CASE WHEN excluded.last_ts >= b.last_ts THEN excluded.close ELSE b.close END,
        high = greatest(b.high, excluded.high),
        low = least(b.low, excluded.low),
        volume = b.volume + excluded.volume,
        trades = b.trades + excluded.trades,
        first_ts = least(b.first_ts, excluded.first_ts),
        last_ts = greatest(b.last_ts, excluded.last_ts)
    RETURNING 1
)
SELECT (SELECT count(*) FROM per_minute), (SELECT coalesce(sum(trades), 0) FROM per_minute),
       (SELECT count(*) FROM bars)
"""


UPSERT_BARS = """
INSERT INTO bars_1m AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
                     %s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (symbol, bucket) DO UPDATE SET
    open = CASE WHEN excluded.first_ts < b.first_ts THEN excluded.open ELSE b.open END,
    close = CASE WHEN excluded.last_ts >= b.last_ts THEN excluded.close ELSE b.close END,
    high = greatest(b.high, excluded.high),
    low = least(b.low, excluded.low),
    volume = b.volume + excluded.volume,
    trades = b.trades + excluded.trades,
    first_ts = least(b.first_ts, excluded.first_ts),
    last_ts = greatest(b.last_ts, excluded.last_ts)
"""


@dataclass(frozen=True)
class SinkResult:
    received: int
    inserted: int
    bars_touched: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


@dataclass
class _Bar:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int
    first_ts: int
    last_ts: int


def tick_days(ticks: Sequence[Tick]) -> set[dt.date]:
    return {dt.datetime.fromtimestamp(t.ts / 1000, tz=dt.UTC).date() for t in ticks}


def fold_bars(ticks: Sequence[Tick]) -> dict[tuple[str, int], _Bar]:
    """1-minute OHLCV per (symbol, minute start in ms), in whatever order the ticks come."""
    bars: dict[tuple[str, int], _Bar] = {}
    for t in ticks:
        key = (t.symbol, t.ts - t.ts % 60_000)
        bar = bars.get(key)
        if bar is None:
            bars[key] = _Bar(t.price, t.price, t.price, t.price, t.size, 1, t.ts, t.ts)
            continue
        if t.price > bar.high:
            bar.high = t.price
        if t.price < bar.low:
            bar.low = t.price
        if t.ts < bar.first_ts:
            bar.open, bar.first_ts = t.price, t.ts
        if t.ts >= bar.last_ts:
            bar.close, bar.last_ts = t.price, t.ts
        bar.volume += t.size
        bar.trades += 1
    return bars


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


class TickSink:
    """Writes tick batches; remembers which daily partitions exist to skip the DDL check.

    Fast path: binary COPY straight into `ticks` and bars folded in Python, inside a
    savepoint. A redelivered tick makes the COPY fail on the primary key; the savepoint is
    rolled back and the batch goes through the staging table, where only rows that are
    really new are inserted and rolled up. Either way the result is the same.
    """

    def __init__(self) -> None:
        self.known_days: set[dt.date] = set()

    async def write(self, conn: AsyncConnection, ticks: Sequence[Tick]) -> SinkResult:
        if not ticks:
            return SinkResult(0, 0, 0)
        missing = tick_days(ticks) - self.known_days
        if missing:
            await ensure_tick_partitions(conn, missing)
            self.known_days |= missing
        async with conn.transaction():
            try:
                async with conn.transaction():
                    bars = await self._copy_direct(conn, ticks)
                return SinkResult(len(ticks), len(ticks), bars)
            except psycopg.errors.UniqueViolation:
                pass
            return await self._staged(conn, ticks)

    async def _copy_direct(self, conn: AsyncConnection, ticks: Sequence[Tick]) -> int:
        async with conn.cursor().copy(
            "COPY ticks (symbol, ts, price, size, source) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "timestamptz", "numeric", "int8", "text"])
            for t in ticks:
                await copy.write_row((t.symbol, _utc(t.ts), t.price, t.size, t.source))
        bars = fold_bars(ticks)
        keys = list(bars)
        values = list(bars.values())
        await conn.execute(UPSERT_BARS, (
            [k[0] for k in keys], [_utc(k[1]) for k in keys], [b.open for b in values],
            [b.high for b in values], [b.low for b in values], [b.close for b in values],
            [b.volume for b in values], [b.trades for b in values], [_utc(b.first_ts) for b in values],
            [_utc(b.last_ts) for b in values],
        ))
        return len(bars)

    async def _staged(self, conn: AsyncConnection, ticks: Sequence[Tick]) -> SinkResult:
        await conn.execute(CREATE_STAGE)
        await conn.execute("TRUNCATE tick_stage")
        async with conn.cursor().copy("COPY tick_stage (symbol, ts_ms, price, size, source) FROM STDIN") as copy:
            await copy.write("".join(f"{t.symbol}\t{t.ts}\t{t.price}\t{t.size}\t{t.source}\n" for t in ticks))
        cur = await conn.execute(INSERT_AND_ROLL_UP)
        row = await cur.fetchone()
        assert row is not None
        _, inserted, bars = row
        return SinkResult(len(ticks), int(inserted), int(bars))
