"""History backfill: provider daily bars into `daily_bars`, 1-minute bars into `bars_1m`.

The range is cut into chunks (a calendar year of daily bars, a calendar month of minute bars).
Each chunk's rows and its completion record are written in one transaction, so a run killed
at any point leaves only whole chunks behind; a rerun skips completed chunks and redoes the
rest. Writes are idempotent on the tables' natural keys, so running twice changes nothing.
A chunk that reaches into today is never marked complete: the provider may still add to it.
Requests go through the provider's token bucket (and daily budget), so backfill respects the
same limits as live polling. When the provider's plan serves only recent history (Alpha
Vantage's free key: the latest 100 sessions), chunks older than that are reported as beyond the
plan and nothing is asked for them; a chunk the plan covers only in part is written but not
marked complete, so a later run with a better plan fills it. When the provider reports a split
or dividend dated after a completed chunk was written, that symbol's completed daily chunks are
reopened and fetched again, so their adjusted closes follow the new adjustment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

import psycopg
import structlog
from tqdm import tqdm

from fetcher.provider_metrics import BACKFILL_ROWS
from fetcher.providers.errors import ProviderError
from fetcher.quotes import MinuteBar
from stocktrack_common.daily_bars_csv import DailyBar, upsert_daily_bars_async

log = structlog.get_logger(__name__)

INTERVALS = ("1d", "1m")

# One statement per chunk: the triggers on bars_1m that mark its roll-ups (5m to 1d) for the
# writers' roller then run once for the chunk's minutes instead of once per minute.
INSERT_MINUTE_BARS = """
INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[],
                     %s::numeric[], %s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (symbol, bucket) DO NOTHING
"""
CHUNK_DONE = """
SELECT 1 FROM backfill_progress
WHERE provider = %s AND symbol = %s AND interval = %s AND chunk_start <= %s AND chunk_end >= %s
LIMIT 1
"""
OLDEST_DAILY_COMPLETION = """
SELECT min(completed_at) FROM backfill_progress WHERE provider = %s AND symbol = %s AND interval = '1d'
"""
REOPEN_DAILY_CHUNKS = """
DELETE FROM backfill_progress
WHERE provider = %s AND symbol = %s AND interval = '1d' AND completed_at < %s
"""
RECORD_CHUNK = """
INSERT INTO backfill_progress (provider, symbol, interval, chunk_start, chunk_end, rows)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (provider, symbol, interval, chunk_start) DO UPDATE
SET chunk_end = EXCLUDED.chunk_end, rows = EXCLUDED.rows, completed_at = now()
"""


class HistoryClient(Protocol):
    name: str

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]: ...

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]: ...

    async def aclose(self) -> None: ...


@dataclass
class BackfillResult:
    rows: int = 0
    chunks_done: int = 0
    chunks_skipped: int = 0
    chunks_beyond_plan: int = 0
    chunks_reopened: int = 0
    failures: list[str] = field(default_factory=list)


async def _reopen_after_corporate_actions(
    conn: psycopg.AsyncConnection, client: HistoryClient, symbol: str
) -> int:
    """Completed daily chunks hold adjusted closes as of their completion; a later split or
    dividend changes every adjusted close before it. Reopen those chunks so this run fetches
    them again (the upsert then rewrites adj_close). Returns how many were reopened."""
    actions_since = getattr(client, "corporate_actions", None)
    if actions_since is None:
        return 0
    cur = await conn.execute(OLDEST_DAILY_COMPLETION, (client.name, symbol))
    row = await cur.fetchone()
    await conn.commit()
    if row is None or row[0] is None:
        return 0
    actions: list[date] = await actions_since(symbol, row[0].date())
    if not actions:
        return 0
    latest = max(actions)
    # A chunk completed on the ex-date itself may predate the adjustment too.
    cutoff = datetime.combine(latest + timedelta(days=1), time(0), tzinfo=UTC)
    cur = await conn.execute(REOPEN_DAILY_CHUNKS, (client.name, symbol, cutoff))
    reopened = max(cur.rowcount, 0)
    await conn.commit()
    if reopened:
        log.info(
            "split or dividend after completed chunks; adjusted history fetched again",
            provider=client.name,
            symbol=symbol,
            action_day=str(latest),
            chunks=reopened,
        )
    return reopened


async def _history_start(client: HistoryClient, symbol: str, interval: str) -> date | None:
    """First day the client's plan serves (None: no plan limit); clients without the notion have none."""
    start_of = getattr(client, "history_start", None)
    if start_of is None:
        return None
    first: date | None = await start_of(symbol, interval)
    return first


def chunk_ranges(start: date, end: date, interval: str) -> list[tuple[date, date]]:
    """Calendar years (1d) or months (1m) covering [start, end], clipped to it."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}")
    chunks = []
    cursor = start
    while cursor <= end:
        if interval == "1d":
            boundary = date(cursor.year, 12, 31)
        else:
            boundary = (date(cursor.year, cursor.month, 1) + timedelta(days=32)).replace(day=1) - timedelta(
                days=1
            )
        chunk_end = min(boundary, end)
        chunks.append((cursor, chunk_end))
        cursor = chunk_end + timedelta(days=1)
    return chunks


def _minute_row(bar: MinuteBar) -> tuple[object, ...]:
    # A provider bar says nothing about its first and last trade times: span the whole minute.
    last = bar.bucket + timedelta(seconds=59, milliseconds=999)
    return (
        bar.symbol,
        bar.bucket,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.trades,
        bar.bucket,
        last,
    )


async def _write_chunk(
    conn: psycopg.AsyncConnection,
    provider: str,
    symbol: str,
    interval: str,
    chunk: tuple[date, date],
    bars: Sequence[DailyBar] | Sequence[MinuteBar],
    complete: bool,
) -> int:
    async with conn.transaction():
        if interval == "1d":
            written = await upsert_daily_bars_async(conn, bars)  # type: ignore[arg-type]
        else:
            rows = [_minute_row(bar) for bar in bars]  # type: ignore[arg-type]
            written = 0
            if rows:
                cur = await conn.execute(
                    INSERT_MINUTE_BARS, [list(column) for column in zip(*rows, strict=True)]
                )
                written = max(cur.rowcount, 0)
        if complete:
            await conn.execute(RECORD_CHUNK, (provider, symbol, interval, chunk[0], chunk[1], len(bars)))
    return written


async def backfill(
    database_url: str,
    client: HistoryClient,
    symbols: Sequence[str],
    start: date,
    end: date,
    interval: str = "1d",
    progress: bool = True,
    today: date | None = None,
) -> BackfillResult:
    today = today or datetime.now(UTC).date()
    end = min(end, today)
    chunks = chunk_ranges(start, end, interval)
    result = BackfillResult()
    bar = tqdm(
        total=len(chunks) * len(symbols), unit="chunk", desc=f"backfill {interval}", disable=not progress
    )
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        prefetch = getattr(client, "prefetch", None)
        if prefetch is not None and chunks:
            # Providers with a multi-symbol endpoint load the run's history in a few requests.
            try:
                await prefetch(list(symbols), chunks[0][0], chunks[-1][1], interval)
            except ProviderError as exc:
                log.warning("multi-symbol prefetch failed; fetching per symbol", outcome=exc.outcome)
        for symbol in symbols:
            try:
                if interval == "1d":
                    result.chunks_reopened += await _reopen_after_corporate_actions(conn, client, symbol)
                plan_start = await _history_start(client, symbol, interval)
            except ProviderError as exc:
                result.failures.append(f"{symbol}: {exc.outcome}")
                log.error(
                    "backfill of symbol failed",
                    provider=client.name,
                    symbol=symbol,
                    outcome=exc.outcome,
                    error=exc.message,
                )
                bar.update(len(chunks))
                continue
            beyond = [chunk for chunk in chunks if plan_start is not None and chunk[1] < plan_start]
            if beyond:
                result.chunks_beyond_plan += len(beyond)
                log.warning(
                    "history older than the provider plan serves was not requested",
                    provider=client.name,
                    symbol=symbol,
                    plan_starts=str(plan_start),
                    chunks=len(beyond),
                )
                bar.update(len(beyond))
            for chunk in chunks:
                if chunk in beyond:
                    continue
                bar.set_postfix_str(f"{symbol} {chunk[0]:%Y-%m}", refresh=False)
                done = await conn.execute(CHUNK_DONE, (client.name, symbol, interval, chunk[0], chunk[1]))
                if await done.fetchone():
                    await conn.commit()
                    result.chunks_skipped += 1
                    bar.update(1)
                    continue
                await conn.commit()
                try:
                    if interval == "1d":
                        bars: Sequence[DailyBar] | Sequence[MinuteBar] = await client.daily_bars(
                            symbol, chunk[0], chunk[1]
                        )
                    else:
                        bars = await client.minute_bars(
                            symbol,
                            datetime.combine(chunk[0], time(0), tzinfo=UTC),
                            datetime.combine(chunk[1] + timedelta(days=1), time(0), tzinfo=UTC),
                        )
                except ProviderError as exc:
                    result.failures.append(f"{symbol} {chunk[0]}..{chunk[1]}: {exc.outcome}")
                    log.error(
                        "backfill chunk failed",
                        provider=client.name,
                        symbol=symbol,
                        chunk_start=str(chunk[0]),
                        outcome=exc.outcome,
                        error=exc.message,
                    )
                    bar.update(1)
                    continue
                written = await _write_chunk(
                    conn,
                    client.name,
                    symbol,
                    interval,
                    chunk,
                    bars,
                    complete=chunk[1] < today - timedelta(days=1)
                    and (plan_start is None or plan_start <= chunk[0]),
                )
                BACKFILL_ROWS.labels(client.name, interval).inc(written)
                result.rows += written
                result.chunks_done += 1
                bar.update(1)
    bar.close()
    log.info(
        "backfill finished",
        provider=client.name,
        interval=interval,
        rows=result.rows,
        chunks_done=result.chunks_done,
        chunks_skipped=result.chunks_skipped,
        chunks_beyond_plan=result.chunks_beyond_plan,
        chunks_reopened=result.chunks_reopened,
        failures=len(result.failures),
    )
    return result
