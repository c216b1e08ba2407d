"""Persist a batch of ticks and fold them into 1-minute bars, idempotently, in one statement.

The batch's raw field values are COPYed (text format) into a temporary staging table; one
statement then inserts them into `ticks` with ON CONFLICT DO NOTHING and aggregates only
the rows really inserted (RETURNING) into `bars_1m`. A redelivered batch therefore inserts
nothing and adds nothing to any bar: volume and trade counts are never counted twice. Bars
keep the times of their open and close ticks, so batches arriving out of order still merge
to the right open and close.

Why staging rather than typed rows: the writer's cost is Python work per tick. Handing
PostgreSQL the validated bytes as they came from Redis leaves parsing, conversion and
aggregation to the database, which runs on its own core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import AsyncConnection

from stocktrack_common.messages import TickRow
from stocktrack_common.partitions import ensure_tick_partitions

DAY_MS = 86_400_000

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
    RETURNING symbol, ts, price, size, source
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
SELECT newest.symbol, (extract(epoch FROM newest.ts) * 1000)::bigint, newest.price::text, newest.size,
       newest.source, (SELECT count(*) FROM inserted), (SELECT count(*) FROM bars)
FROM (SELECT DISTINCT ON (symbol) symbol, ts, price, size, source FROM inserted ORDER BY symbol, ts DESC) newest
"""


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


def tick_days(rows: Sequence[TickRow]) -> set[dt.date]:
    epoch = dt.date(1970, 1, 1)
    return {epoch + dt.timedelta(days=d) for d in {int(row[1]) // DAY_MS for row in rows}}


class TickSink:
    """Writes tick batches; remembers which daily partitions exist to skip the DDL check."""

    def __init__(self) -> None:
        self.known_days: set[dt.date] = set()

    async def write(self, conn: AsyncConnection, rows: Sequence[TickRow]) -> SinkResult:
        if not rows:
            return SinkResult(0, 0, 0)
        missing = tick_days(rows) - self.known_days
        if missing:
            await ensure_tick_partitions(conn, missing)
            self.known_days |= missing
        async with conn.transaction():
            await conn.execute(CREATE_STAGE)
            async with conn.cursor().copy("COPY tick_stage (symbol, ts_ms, price, size, source) FROM STDIN") as copy:
                await copy.write(b"".join(b"\t".join(row) + b"\n" for row in rows))
            cur = await conn.execute(INSERT_AND_ROLL_UP)
            result = await cur.fetchall()
        if not result:
            return SinkResult(len(rows), 0, 0)
        inserted, bars = int(result[0][5]), int(result[0][6])
        newest = [NewestTick(r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in result]
        return SinkResult(len(rows), inserted, bars, newest)
