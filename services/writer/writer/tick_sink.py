"""Persist a batch of ticks and fold them into 1-minute bars, idempotently, in one transaction.

Fast path: the validated raw values go straight into `ticks` with one binary COPY in one
transaction; COPY is all or nothing, so when it succeeds every tick of the batch is new and the
batch's bars (folded here) are merged into `bars_1m`. A redelivered tick makes the COPY fail on
the primary key; that transaction is rolled back (a savepoint would cost two more round trips on
every batch, for the rare redelivery) and the batch goes through a staging table in a new one,
where one statement inserts only the new rows (ON CONFLICT DO NOTHING ... RETURNING) and
folds exactly those into the bars. Either way a tick is counted in its bar once. Both folds and
the merge into stored bars are those of stocktrack_common.bars (the one bar model): a merge
compares the stored row with the new partial bar only, so batches arriving out of order or
redelivered still give the bar of all their ticks, and the merge is a single-row upsert, so
concurrent writers cannot lose updates. Upserts go in (symbol, bucket) order so two writers
touching the same bars lock them in the same order instead of deadlocking.

Why raw bytes and a binary COPY: the writer's cost is Python work per tick, and the database's
shares the same cores. The rows are built from the validated bytes as they came from Redis with
the encodings of repeating values cached (`writer/tick_copy.py`), and PostgreSQL reads integers
instead of parsing timestamp and numeric text (bench/ingest.py).

Trades a provider may amend carry their trade id (`trade_id`); a batch holding any applies,
in its transaction, the amendments already recorded for them (`writer/trade_amendments.py`):
one that arrived before its trade, or a cancel of a trade stored again by a redelivery.
"""

from __future__ import annotations

import datetime as dt
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import AsyncConnection

from stocktrack_common.bars import UPSERT_1M, Bar, bucket_of, roll_up_1m_sql, upsert_1m_params
from stocktrack_common.messages import (
    MessageError,
    TickRow,
    tick_row,
    tick_row_of_entry,
    tick_rows_of_entries,
)
from stocktrack_common.partitions import ensure_tick_partitions
from stocktrack_common.settings import first_retained_day
from writer import trade_amendments
from writer.tick_copy import CACHE_LIMIT, COPY_HEADER, COPY_TRAILER, FieldCache, TickCopyEncoder

DAY_MS = 86_400_000
_TS = operator.itemgetter(1)

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS tick_stage (
    symbol text, ts timestamptz, price numeric, size bigint, source text, trade_id text
) ON COMMIT DELETE ROWS
"""

INSERT_NEW_AND_FOLD = f"""
WITH inserted AS (
    INSERT INTO ticks (symbol, ts, price, size, source, trade_id)
    SELECT symbol, ts, price, size, source, trade_id FROM tick_stage
    ON CONFLICT DO NOTHING
    RETURNING symbol, ts, price, size
), bars AS (
{roll_up_1m_sql("inserted", merge=True)}
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM bars)
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
    amended: trade_amendments.Applied = field(default_factory=trade_amendments.Applied)

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class RetainedTicks:
    """Decodes ticks, refusing one whose UTC day is older than tick retention.

    The janitor drops those days' partitions, so such a tick can never be stored; refusing it at
    decode time dead-letters it at once with the reason, instead of after MAX_DELIVERIES failed
    inserts (and without recreating a partition the janitor would only drop again). The cut-off is
    recomputed once a minute, not per tick: decoding is on the writer's hot path.

    `decode` takes an entry's fields as a dict; `decode_flat` (the consumer's fast path) its flat
    field list, and returns None where the dict path has to look (the consumer then calls
    `decode`, which gives the reason); `decode_read` a whole read's flat lists, and returns None
    unless every tick passes without a doubt. A too-old tick is refused by `decode` and
    `decode_flat`; `decode_read` leaves a read holding one to them.
    """

    def __init__(self, retention_days: int, today: Callable[[], dt.date] = _today) -> None:
        self.retention_days = retention_days
        self.today = today
        self._first_ms = 0
        self._first_text = b"0"
        self._refresh_at = 0.0

    def _first_kept_ms(self) -> int:
        now = time.monotonic()
        if now >= self._refresh_at:
            first = first_retained_day(self.today(), self.retention_days)
            self._first_ms = (first - dt.date(1970, 1, 1)).days * DAY_MS
            # Every 13-digit ts is at least 10**12, so a cut-off before that needs no int() either.
            self._first_text = str(max(self._first_ms, 10**12)).encode()
            self._refresh_at = now + 60
        return self._first_ms

    def decode(self, fields: dict[bytes, bytes]) -> TickRow:
        return self._kept(tick_row(fields))

    def decode_flat(self, flat: list[bytes]) -> TickRow | None:
        row = tick_row_of_entry(flat)
        if row is None:
            return None
        return row if self._all_kept((row,)) else self._kept(row)

    def decode_read(self, flats: list[list[bytes]]) -> list[TickRow] | None:
        """Every tick of a read, when all are in the producers' layout and none is too old."""
        rows = tick_rows_of_entries(flats)
        # Some tick may be too old (or the cut-off is due): each is then judged on its own.
        return rows if rows is not None and self._all_kept(rows) else None

    def _all_kept(self, rows: Sequence[TickRow]) -> bool:
        """True when every row is surely kept, judged on the ts bytes (no int() per tick).

        Digits of equal length compare as their numbers do: 13-digit stamps (2001 to 2286) at or
        after the cut-off's are kept. False only means "look closer" (`_kept`), also when the
        cut-off is due for its refresh.
        """
        stamps = set(map(_TS, rows))
        return (
            set(map(len, stamps)) == {13}
            and min(stamps) >= self._first_text
            and time.monotonic() < self._refresh_at
        )

    def _kept(self, row: TickRow) -> TickRow:
        first_ms = self._first_kept_ms()
        if int(row[1]) < first_ms:
            day, first = _utc_day(int(row[1])), _utc_day(first_ms)
            raise MessageError(
                f"tick of {day.isoformat()} is older than tick retention (TICK_RETENTION_DAYS="
                f"{self.retention_days}: the oldest day kept is {first.isoformat()}); its partition is dropped"
            )
        return row


def _decimal(price: bytes) -> Decimal:
    return Decimal(price.decode())


def _utc_day(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)


class TickSink:
    """Writes tick batches; remembers which daily partitions exist to skip the DDL check."""

    def __init__(self) -> None:
        self.known_days: set[dt.date] = set()
        self._encoder = TickCopyEncoder()
        self._decimals: FieldCache[Decimal] = FieldCache(_decimal, CACHE_LIMIT)

    async def write(self, conn: AsyncConnection, rows: Sequence[TickRow]) -> SinkResult:
        try:
            return await self._write(conn, rows)
        except psycopg.errors.CheckViolation as exc:
            if "no partition of relation" not in str(exc):
                raise
            # A partition this writer had seen was dropped behind its back (retention, an operator):
            # forget what it believed, create the missing day and write the batch again.
            self.known_days.clear()
            return await self._write(conn, rows)

    async def _write(self, conn: AsyncConnection, rows: Sequence[TickRow]) -> SinkResult:
        if not rows:
            return SinkResult(0, 0, 0)
        encode, decimals = self._encoder.fields, self._decimals
        parts: list[bytes] = [COPY_HEADER]
        bars: dict[tuple[bytes, int], Bar] = {}
        newest: dict[bytes, tuple[int, TickRow]] = {}
        trades: set[trade_amendments.TradeKey] = set()
        for row in rows:
            symbol, ts_text, price_text, size_text, source, trade = row
            ts = int(ts_text)
            if trade:
                trades.add((source.decode(), symbol.decode(), trade.decode()))
            parts += encode(symbol, ts, price_text, size_text, source, trade)
            # The bar fold, in the same pass over the batch: a second pass costs ~20% of this loop.
            price, size = decimals[price_text], int(size_text)
            key = (symbol, bucket_of(ts))
            bar = bars.get(key)
            if bar is None:
                bars[key] = Bar.of_tick(key[1], ts, price, size)
            else:
                bar.add(ts, price, size)
            current = newest.get(symbol)
            if current is None or ts >= current[0]:
                newest[symbol] = (ts, row)
        parts.append(COPY_TRAILER)
        missing = {_utc_day(minute) for _, minute in bars} - self.known_days
        if missing:
            await ensure_tick_partitions(conn, missing)
            self.known_days |= missing
        payload = b"".join(parts)
        try:
            async with conn.transaction():
                async with conn.cursor().copy(
                    "COPY ticks (symbol, ts, price, size, source, trade_id) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    await copy.write(payload)
                await self._upsert_bars(conn, bars)
                amended = await trade_amendments.apply(conn, trades)
            inserted, touched = len(rows), len(bars)
        except psycopg.errors.UniqueViolation:
            # The failed transaction wrote nothing; the redelivery path runs in a new one.
            async with conn.transaction():
                inserted, touched = await self._insert_new_only(conn, payload)
                amended = await trade_amendments.apply(conn, trades)
        latest = (
            [
                NewestTick(r[0].decode(), ts, r[2].decode(), int(r[3]), r[4].decode())
                for ts, r in newest.values()
            ]
            if inserted
            else []
        )
        return SinkResult(len(rows), inserted, touched, latest, amended)

    @staticmethod
    async def _upsert_bars(conn: AsyncConnection, bars: dict[tuple[bytes, int], Bar]) -> None:
        by_text = {(symbol.decode(), bucket): bar for (symbol, bucket), bar in bars.items()}
        await conn.execute(UPSERT_1M, upsert_1m_params(by_text))

    @staticmethod
    async def _insert_new_only(conn: AsyncConnection, payload: bytes) -> tuple[int, int]:
        """Redelivery path: store only the rows not stored yet and fold exactly those into bars."""
        await conn.execute(CREATE_STAGE)
        await conn.execute("TRUNCATE tick_stage")
        async with conn.cursor().copy(
            "COPY tick_stage (symbol, ts, price, size, source, trade_id) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            await copy.write(payload)
        cur = await conn.execute(INSERT_NEW_AND_FOLD)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])
