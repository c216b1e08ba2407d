"""Replays recorded ticks or bars from a CSV (or Parquet) file, at real or accelerated speed.

Tick files need columns symbol, a time column (ts | timestamp | time | datetime) and price,
optionally size. Bar files need open, high, low, close (and volume) instead of price; each
bar becomes four ticks inside its interval (open, then low and high in the order that fits
the bar's direction, then close) whose volumes add up to the bar's, so the 1-minute bars the
writer builds from them equal the recorded bars. Times are epoch seconds or milliseconds, or
ISO 8601 (a time without offset is UTC). Rows are ordered by time; rows with the same time keep
their file order, so the order per symbol is preserved. `speed` 60 plays one recorded minute
per second; 0 plays as fast as the publisher takes it.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import Tick
from stocktrack_common.settings import parse_symbol_list

NAME = "replay"
TIME_COLUMNS = ("ts", "timestamp", "time", "datetime", "date")
SIZE_COLUMNS = ("size", "volume", "qty", "quantity")
BAR_COLUMNS = ("open", "high", "low", "close")
SECONDS_CUTOFF = 100_000_000_000  # below this an integer time is epoch seconds, above it milliseconds


class ReplayFormatError(ValueError):
    pass


def parse_time_ms(value: Any) -> int:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return round(number * 1000) if abs(number) < SECONDS_CUTOFF else int(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return round(number * 1000) if abs(number) < SECONDS_CUTOFF else int(number)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayFormatError(f"unreadable time {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _decimal(value: Any, column: str, line: int) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReplayFormatError(f"row {line}: {column} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise ReplayFormatError(f"row {line}: {column} must be positive")
    return number


def _size(value: Any, line: int) -> int:
    if value is None or str(value).strip() == "":
        return 0
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReplayFormatError(f"row {line}: size is not a number") from None
    if not number.is_finite() or number < 0:
        raise ReplayFormatError(f"row {line}: size must be >= 0")
    return int(number)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ReplayFormatError(
                "reading Parquet needs pyarrow: pip install 'stocktrack-fetcher[parquet]'"
            ) from None
        table = pq.read_table(path)
        for row in table.to_pylist():
            yield {str(k).strip().lower(): v for k, v in row.items()}
        return
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield {str(k).strip().lower(): v for k, v in row.items() if k is not None}


@dataclass(frozen=True)
class _Row:
    ts_ms: int
    order: int
    ticks: tuple[Tick, ...]


def bar_to_ticks(
    symbol: str, start_ms: int, interval_ms: int, o: Decimal, h: Decimal, l_: Decimal, c: Decimal, volume: int
) -> tuple[Tick, ...]:
    """Four ticks reproducing the bar's OHLCV inside [start, start + interval)."""
    middle = (l_, h) if c >= o else (h, l_)
    prices = (o, middle[0], middle[1], c)
    share, remainder = divmod(volume, 4)
    sizes = (share, share, share, share + remainder)
    step = max(1, interval_ms // 4)
    return tuple(
        Tick(symbol=symbol, ts=start_ms + i * step, price=prices[i], size=sizes[i], source=NAME)
        for i in range(4)
    )


def load_replay(path: Path, kind: str = "auto", bar_seconds: float = 60.0) -> list[Tick]:
    """Every tick of the file in replay order (time, then file order)."""
    rows: list[_Row] = []
    detected: str | None = None if kind == "auto" else kind
    interval_ms = int(bar_seconds * 1000)
    for line, raw in enumerate(_rows(path), start=2):
        if detected is None:
            detected = "bars" if all(col in raw for col in BAR_COLUMNS) else "ticks"
        time_col = next((c for c in TIME_COLUMNS if c in raw), None)
        if time_col is None or "symbol" not in raw:
            raise ReplayFormatError(
                f"{path.name}: needs a symbol column and one of {', '.join(TIME_COLUMNS)}"
            )
        try:
            (symbol,) = parse_symbol_list(str(raw["symbol"]))
        except ValueError:
            raise ReplayFormatError(f"row {line}: invalid symbol {raw['symbol']!r}") from None
        ts_ms = parse_time_ms(raw[time_col])
        size = _size(next((raw[c] for c in SIZE_COLUMNS if c in raw), None), line)
        if detected == "bars":
            o, h, l_, c = (_decimal(raw.get(col), col, line) for col in BAR_COLUMNS)
            ticks = bar_to_ticks(symbol, ts_ms, interval_ms, o, h, l_, c, size)
        else:
            if "price" not in raw:
                raise ReplayFormatError(f"{path.name}: a tick file needs a price column")
            price = _decimal(raw["price"], "price", line)
            ticks = (Tick(symbol=symbol, ts=ts_ms, price=price, size=size, source=NAME),)
        rows.append(_Row(ts_ms, line, ticks))
    rows.sort(key=lambda r: (r.ts_ms, r.order))
    return [tick for row in rows for tick in row.ticks]


def _shifted(ticks: Iterable[Tick], offset_ms: int) -> list[Tick]:
    return [t.model_copy(update={"ts": t.ts + offset_ms}) for t in ticks]


class ReplaySource:
    name = NAME

    def __init__(
        self,
        path: Path,
        speed: float = 1.0,
        kind: str = "auto",
        bar_seconds: float = 60.0,
        max_pause_seconds: float | None = None,
        shift_to_now: bool = False,
        max_batch: int = 500,
    ) -> None:
        self.ticks = load_replay(path, kind, bar_seconds)
        if shift_to_now and self.ticks:
            self.ticks = _shifted(self.ticks, int(time.time() * 1000) - self.ticks[0].ts)
        self.speed = speed
        self.max_pause = max_pause_seconds
        self.max_batch = max_batch

    async def batches(self, stop: asyncio.Event) -> AsyncIterator[list[Tick]]:
        index = 0
        total = len(self.ticks)
        while index < total and not stop.is_set():
            batch = [self.ticks[index]]
            index += 1
            while index < total and len(batch) < self.max_batch:
                if self.speed > 0 and self.ticks[index].ts != batch[0].ts:
                    break
                batch.append(self.ticks[index])
                index += 1
            yield batch
            if index < total and self.speed > 0:
                pause = (self.ticks[index].ts - batch[-1].ts) / 1000.0 / self.speed
                if self.max_pause is not None:
                    pause = min(pause, self.max_pause)
                await sleep_or_stop(stop, pause)

    async def aclose(self) -> None:
        return None
