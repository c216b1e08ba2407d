"""Persist a batch of ticks and keep `bars_1m` equal to what the stored ticks say.

Fast path: the validated raw values go straight into `ticks` with one text COPY inside a
savepoint. A redelivered tick makes that COPY fail on the primary key; the savepoint is
rolled back and the batch goes through a staging table with ON CONFLICT DO NOTHING, so only
new rows are stored. Either way, the bars of every minute the batch touched are then
recomputed from the ticks themselves: a bar is a pure function of stored ticks, so a replay,
an out-of-order batch or a second writer can never count a tick twice. A per-symbol advisory
lock (taken in hash order, so two writers cannot deadlock) makes concurrent recomputes of
the same minute see each other's rows.

Why raw bytes: the writer's cost is Python work per tick. Handing PostgreSQL the validated
text as it came from Redis leaves parsing and aggregation to the database, on its own core.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import AsyncConnection

from stocktrack_common.messages import TickRow
from stocktrack_common.partitions import ensure_tick_partitions

DAY_MS = 86_400_000
MINUTE_MS = 60_000
BAR_LOCK_CLASS = 727_003

LOCK_SYMBOLS = """
SELECT pg_advisory_xact_lock(%s, h) FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest(%s::text[]) s ORDER BY 1) q
"""

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS tick_stage (
    symbol text, ts timestamptz, price numeric, size bigint, source text
) ON COMMIT DELETE ROWS
"""

INSERT_FROM_STAGE = """
INSERT INTO ticks (symbol, ts, price, size, source)
SELECT symbol, ts, price, size, source FROM tick_stage
ON CONFLICT DO NOTHING
"""

# Bars of the touched minutes, recomputed from the ticks. A stored bar with more trades than
# the ticks now hold (backfilled, or its ticks already dropped by retention) is kept as is.
RECOMPUTE_BARS = """
INSERT INTO bars_1m AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT t.symbol, date_trunc('minute', t.ts),
       (array_agg(t.price ORDER BY t.ts, t.source))[1], max(t.price), min(t.price),
       (array_agg(t.price ORDER BY t.ts DESC, t.source DESC))[1], sum(t.size), count(*), min(t.ts), max(t.ts)
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS r(symbol, lo, hi)
JOIN ticks t ON t.symbol = r.symbol AND t.ts >= r.lo AND t.ts < r.hi
GROUP BY 1, 2
ON CONFLICT (symbol, bucket) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, trades = excluded.trades, first_ts = excluded.first_ts, last_ts = excluded.last_ts
WHERE b.trades <= excluded.trades
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
        span: dict[str, list[int]] = {}  # symbol -> [min ts, max ts]
        newest: dict[str, tuple[int, TickRow]] = {}
        for row in rows:
            symbol, ts_b = row[0].decode(), row[1]
            ts = int(ts_b)
            lines.append(b"%s\t%s\t%s\t%s\t%s\n" % (row[0], ts_text(ts), row[2], row[3], row[4]))
            bounds = span.get(symbol)
            if bounds is None:
                span[symbol] = [ts, ts]
            elif ts < bounds[0]:
                bounds[0] = ts
            elif ts > bounds[1]:
                bounds[1] = ts
            current = newest.get(symbol)
            if current is None or ts >= current[0]:
                newest[symbol] = (ts, row)
        days = {
            dt.date(1970, 1, 1) + dt.timedelta(days=d)
            for b in span.values()
            for d in range(b[0] // DAY_MS, b[1] // DAY_MS + 1)
        }
        missing = days - self.known_days
        if missing:
            await ensure_tick_partitions(conn, missing)
            self.known_days |= missing
        payload = b"".join(lines)
        symbols = sorted(span)
        async with conn.transaction():
            await conn.execute(LOCK_SYMBOLS, (BAR_LOCK_CLASS, symbols))
            try:
                async with conn.transaction():
                    async with conn.cursor().copy(
                        "COPY ticks (symbol, ts, price, size, source) FROM STDIN"
                    ) as copy:
                        await copy.write(payload)
                inserted = len(rows)
            except psycopg.errors.UniqueViolation:
                inserted = await self._insert_new_only(conn, payload)
            bars = 0
            if inserted:
                cur = await conn.execute(
                    RECOMPUTE_BARS,
                    (
                        symbols,
                        [_utc(span[s][0] - span[s][0] % MINUTE_MS) for s in symbols],
                        [_utc(span[s][1] - span[s][1] % MINUTE_MS + MINUTE_MS) for s in symbols],
                    ),
                )
                bars = max(cur.rowcount, 0)
        latest = (
            [
                NewestTick(r[0].decode(), ts, r[2].decode(), int(r[3]), r[4].decode())
                for ts, r in newest.values()
            ]
            if inserted
            else []
        )
        return SinkResult(len(rows), inserted, bars, latest)

    async def _insert_new_only(self, conn: AsyncConnection, payload: bytes) -> int:
        await conn.execute(CREATE_STAGE)
        await conn.execute("TRUNCATE tick_stage")
        async with conn.cursor().copy("COPY tick_stage (symbol, ts, price, size, source) FROM STDIN") as copy:
            await copy.write(payload)
        cur = await conn.execute(INSERT_FROM_STAGE)
        return max(cur.rowcount, 0)
