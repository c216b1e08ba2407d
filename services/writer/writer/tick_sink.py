"""Persist a batch of ticks and fold them into 1-minute bars, idempotently, in one transaction.

Fast path: the validated raw values go straight into `ticks` with one text COPY inside a
savepoint; COPY is all or nothing, so when it succeeds every tick of the batch is new and the
batch's bars (folded here) are merged into `bars_1m`. A redelivered tick makes the COPY fail on
the primary key; the savepoint is rolled back and the batch goes through a staging table,
where one statement inserts only the new rows (ON CONFLICT DO NOTHING ... RETURNING) and
folds exactly those into the bars. Either way a tick is counted in its bar once. Bars keep the
times of their open and close ticks, so batches arriving out of order still merge to the right
open and close, and the merge is a single-row upsert, so concurrent writers cannot lose updates.

Why raw bytes: the writer's cost is Python work per tick. Handing PostgreSQL the validated
text as it came from Redis leaves parsing to the database, on its own core.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import AsyncConnection

from stocktrack_common.messages import TickRow
from stocktrack_common.partitions import ensure_tick_partitions

DAY_MS = 86_400_000
MINUTE_MS = 60_000

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS tick_stage (
    symbol text, ts timestamptz, price numeric, size bigint, source text
) ON COMMIT DELETE ROWS
"""

_MERGE_BARS = """
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

UPSERT_BARS = (
    """
INSERT INTO bars_1m AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
                     %s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[])
"""
    + _MERGE_BARS
)

INSERT_NEW_AND_FOLD = (
    """
WITH inserted AS (
    INSERT INTO ticks (symbol, ts, price, size, source)
    SELECT symbol, ts, price, size, source FROM tick_stage
    ON CONFLICT DO NOTHING
    RETURNING symbol, ts, price, size
), per_minute AS (
    SELECT symbol, date_trunc('minute', ts) AS bucket,
           (array_agg(price ORDER BY ts))[1] AS open, max(price) AS high, min(price) AS low,
           (array_agg(price ORDER BY ts DESC))[1] AS close,
           sum(size) AS volume, count(*) AS trades, min(ts) AS first_ts, max(ts) AS last_ts
    FROM inserted GROUP BY 1, 2
), bars AS (
    INSERT INTO bars_1m AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
    SELECT symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts FROM per_minute
"""
    + _MERGE_BARS
    + """
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM bars)
"""
)


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


@dataclass(frozen=True)
class NewestTick:
    symbol: str
    ts: int
    price: str
    size: int
    source: str


@dataclass(frozen=True)
class SinkResult:
    received: int
    inserted: int
    bars_touched: int
    newest: list[NewestTick] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class _TimestampText:
    """Epoch milliseconds as PostgreSQL timestamptz text; the per-second prefix is cached."""

    def __init__(self) -> None:
        self.cache: dict[int, bytes] = {}

    def __call__(self, ms: int) -> bytes:
        sec, milli = divmod(ms, 1000)
        prefix = self.cache.get(sec)
        if prefix is None:
            if len(self.cache) > 100_000:
                self.cache.clear()
            prefix = self.cache[sec] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec)).encode()
        return b"%s.%03d+00" % (prefix, milli)


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


class TickSink:
    """Writes tick batches; remembers which daily partitions exist to skip the DDL check."""

    def __init__(self) -> None:
        self.known_days: set[dt.date] = set()
        self._ts_text = _TimestampText()

    async def write(self, conn: AsyncConnection, rows: Sequence[TickRow]) -> SinkResult:
        if not rows:
            return SinkResult(0, 0, 0)
        ts_text = self._ts_text
        lines: list[bytes] = []
        bars: dict[tuple[bytes, int], _Bar] = {}
        newest: dict[bytes, tuple[int, TickRow]] = {}
        for row in rows:
            symbol, ts = row[0], int(row[1])
            lines.append(b"%s\t%s\t%s\t%s\t%s\n" % (symbol, ts_text(ts), row[2], row[3], row[4]))
            price, size = Decimal(row[2].decode()), int(row[3])
            key = (symbol, ts - ts % MINUTE_MS)
            bar = bars.get(key)
            if bar is None:
                bars[key] = _Bar(price, price, price, price, size, 1, ts, ts)
            else:
                if price > bar.high:
                    bar.high = price
                if price < bar.low:
                    bar.low = price
                if ts < bar.first_ts:
                    bar.open, bar.first_ts = price, ts
                if ts >= bar.last_ts:
                    bar.close, bar.last_ts = price, ts
                bar.volume += size
                bar.trades += 1
            current = newest.get(symbol)
            if current is None or ts >= current[0]:
                newest[symbol] = (ts, row)
        missing = {
            dt.date(1970, 1, 1) + dt.timedelta(days=minute // DAY_MS) for _, minute in bars
        } - self.known_days
        if missing:
            await ensure_tick_partitions(conn, missing)
            self.known_days |= missing
        payload = b"".join(lines)
        async with conn.transaction():
            try:
                async with conn.transaction():
                    async with conn.cursor().copy(
                        "COPY ticks (symbol, ts, price, size, source) FROM STDIN"
                    ) as copy:
                        await copy.write(payload)
                    await self._upsert_bars(conn, bars)
                inserted, touched = len(rows), len(bars)
            except psycopg.errors.UniqueViolation:
                inserted, touched = await self._insert_new_only(conn, payload)
        latest = (
            [
                NewestTick(r[0].decode(), ts, r[2].decode(), int(r[3]), r[4].decode())
                for ts, r in newest.values()
            ]
            if inserted
            else []
        )
        return SinkResult(len(rows), inserted, touched, latest)

    @staticmethod
    async def _upsert_bars(conn: AsyncConnection, bars: dict[tuple[bytes, int], _Bar]) -> None:
        keys, values = list(bars), list(bars.values())
        await conn.execute(
            UPSERT_BARS,
            (
                [k[0].decode() for k in keys],
                [_utc(k[1]) for k in keys],
                [b.open for b in values],
                [b.high for b in values],
                [b.low for b in values],
                [b.close for b in values],
                [b.volume for b in values],
                [b.trades for b in values],
                [_utc(b.first_ts) for b in values],
                [_utc(b.last_ts) for b in values],
            ),
        )

    @staticmethod
    async def _insert_new_only(conn: AsyncConnection, payload: bytes) -> tuple[int, int]:
        """Redelivery path: store only the rows not stored yet and fold exactly those into bars."""
        await conn.execute(CREATE_STAGE)
        await conn.execute("TRUNCATE tick_stage")
        async with conn.cursor().copy("COPY tick_stage (symbol, ts, price, size, source) FROM STDIN") as copy:
            await copy.write(payload)
        cur = await conn.execute(INSERT_NEW_AND_FOLD)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])
