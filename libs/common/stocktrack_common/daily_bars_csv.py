"""Daily bars from CSV files into the `daily_bars` table: the one backfill path for history.

The fetcher's `backfill` command and the recommender's training tests both load CSV history
through here, so a file that trains a model is read exactly as a user's backfill reads it.

Accepted columns (header names are matched case-insensitively, ignoring spaces, underscores
and dashes, so "Adj Close", "adj_close" and "AdjClose" are the same column):

| column    | aliases                                         | required |
|-----------|-------------------------------------------------|----------|
| date      | day, timestamp, datetime                        | yes      |
| open      | o                                               | yes      |
| high      | h                                               | yes      |
| low       | l                                               | yes      |
| close     | c                                               | yes      |
| adj_close | adjusted_close, adjclose, adj (e.g. "Adj Close") | no       |
| volume    | vol, v                                          | yes      |
| symbol    | ticker                                          | no: the caller passes one instead |

This covers Yahoo-style exports (Date,Open,High,Low,Close,Adj Close,Volume) and bokeh's
`stocks.csv.gz` (Ticker,Date,Open,High,Low,Close,Volume,Adj Close). Dates are ISO `YYYY-MM-DD`
(a time part after it is ignored). Files ending in `.gz` are decompressed. Prices are kept as
Decimal, as written in the file, because the table stores them exactly.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import psycopg

from stocktrack_common.messages import SYMBOL_PATTERN

_SYMBOL_RE = re.compile(SYMBOL_PATTERN)

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "timestamp", "datetime"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "adj_close": ("adjclose", "adjustedclose", "adj"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker"),
}
REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")

# A source without adjusted closes (a raw series, a CSV without the column) never erases one
# already stored: adj_close keeps its value when the incoming row has none.
UPSERT_SQL = """
INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol, day) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    adj_close = COALESCE(EXCLUDED.adj_close, daily_bars.adj_close), volume = EXCLUDED.volume,
    source = EXCLUDED.source
WHERE (daily_bars.open, daily_bars.high, daily_bars.low, daily_bars.close, daily_bars.adj_close,
       daily_bars.volume, daily_bars.source)
   IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,
                     COALESCE(EXCLUDED.adj_close, daily_bars.adj_close), EXCLUDED.volume, EXCLUDED.source)
"""


class DailyBarsCSVError(ValueError):
    """A CSV file that cannot be read as daily bars; the message names the line and the problem."""


@dataclass(frozen=True, slots=True)
class DailyBar:
    """One row of `daily_bars`."""

    symbol: str
    day: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    adj_close: Decimal | None
    volume: int
    source: str

    def as_row(self) -> tuple[object, ...]:
        return (
            self.symbol,
            self.day,
            self.open,
            self.high,
            self.low,
            self.close,
            self.adj_close,
            self.volume,
            self.source,
        )


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


def map_columns(header: Sequence[str]) -> dict[str, int]:
    """Canonical column name -> position in the header; raises if a required column is missing."""
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        key = _normalise_header(raw)
        for canonical, aliases in COLUMN_ALIASES.items():
            if key == _normalise_header(canonical) or key in aliases:
                positions.setdefault(canonical, index)
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing:
        raise DailyBarsCSVError(f"missing column(s) {', '.join(missing)} in header {list(header)}")
    return positions


def _decimal(text: str, column: str, line: int) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise DailyBarsCSVError(f"line {line}: {column} is not a number: {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise DailyBarsCSVError(f"line {line}: {column} must be a positive number, got {text!r}")
    return value


def _parse_row(
    cells: list[str], columns: dict[str, int], symbol: str | None, source: str, line: int
) -> DailyBar:
    def cell(name: str) -> str:
        position = columns[name]
        if position >= len(cells):
            raise DailyBarsCSVError(f"line {line}: missing value for {name}")
        return cells[position].strip()

    row_symbol = (cell("symbol") if "symbol" in columns else symbol or "").upper()
    if not _SYMBOL_RE.match(row_symbol):
        raise DailyBarsCSVError(f"line {line}: invalid or missing symbol {row_symbol!r}")
    try:
        day = date.fromisoformat(cell("date")[:10])
    except ValueError as exc:
        raise DailyBarsCSVError(f"line {line}: date is not YYYY-MM-DD: {cell('date')!r}") from exc
    open_, high, low, close = (_decimal(cell(c), c, line) for c in ("open", "high", "low", "close"))
    if high < max(open_, close, low) or low > min(open_, close):
        raise DailyBarsCSVError(f"line {line}: high/low do not bound open/close")
    adj_text = cell("adj_close") if "adj_close" in columns else ""
    adj_close = _decimal(adj_text, "adj_close", line) if adj_text else None
    volume_text = cell("volume")
    try:
        volume = int(Decimal(volume_text))
    except (InvalidOperation, ValueError) as exc:
        raise DailyBarsCSVError(f"line {line}: volume is not a number: {volume_text!r}") from exc
    if volume < 0:
        raise DailyBarsCSVError(f"line {line}: volume must be >= 0")
    return DailyBar(row_symbol, day, open_, high, low, close, adj_close, volume, source)


def parse_daily_bars(
    stream: IO[str], *, symbol: str | None = None, source: str = "csv", symbols: Iterable[str] | None = None
) -> Iterator[DailyBar]:
    """Yield the bars of a CSV text stream.

    `symbol` names the series when the file has no symbol column; `symbols`, when given, keeps only
    those (a multi-symbol file such as bokeh's carries more tickers than a user may want).
    """
    wanted = None if symbols is None else {s.upper() for s in symbols}
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise DailyBarsCSVError("empty file: no header")
    columns = map_columns(header)
    if "symbol" not in columns and not symbol:
        raise DailyBarsCSVError("the file has no symbol column: pass the symbol it holds")
    for line, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        bar = _parse_row(cells, columns, symbol, source, line)
        if wanted is None or bar.symbol in wanted:
            yield bar


def read_daily_bars_file(
    path: str | Path, *, symbol: str | None = None, source: str = "csv", symbols: Iterable[str] | None = None
) -> list[DailyBar]:
    """Parse a CSV file (gzip if it ends in .gz) into bars."""
    file_path = Path(path)
    raw = file_path.read_bytes()
    if file_path.suffix == ".gz":
        raw = gzip.decompress(raw)
    text = io.StringIO(raw.decode("utf-8-sig"))
    return list(parse_daily_bars(text, symbol=symbol, source=source, symbols=symbols))


def upsert_daily_bars(conn: psycopg.Connection, bars: Iterable[DailyBar]) -> int:
    """Insert or update bars on (symbol, day); returns how many rows were written or changed.

    Idempotent: a row identical to the stored one is skipped by the WHERE clause, so loading the
    same file twice reports 0 the second time and rewrites nothing.
    """
    rows = [bar.as_row() for bar in bars]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(UPSERT_SQL, rows, returning=False)
        changed = cur.rowcount
    return max(changed, 0)


async def upsert_daily_bars_async(conn: psycopg.AsyncConnection, bars: Iterable[DailyBar]) -> int:
    """The async twin of upsert_daily_bars, for services that hold an async pool."""
    rows = [bar.as_row() for bar in bars]
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(UPSERT_SQL, rows, returning=False)
        changed = cur.rowcount
    return max(changed, 0)


def load_daily_bars_csv(
    conn: psycopg.Connection,
    path: str | Path,
    *,
    symbol: str | None = None,
    source: str = "csv",
    symbols: Iterable[str] | None = None,
) -> int:
    """Parse a file and upsert it in one transaction (all or nothing); returns rows changed."""
    bars = read_daily_bars_file(path, symbol=symbol, source=source, symbols=symbols)
    with conn.transaction():
        return upsert_daily_bars(conn, bars)
