"""Replay of recorded ticks and bars: order per symbol, speed, bar reconstruction, Parquet."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fetcher.providers.replay import ReplayFormatError, ReplaySource, load_replay
from stocktrack_common.messages import Tick


async def drain(source: ReplaySource) -> list[list[Tick]]:
    stop = asyncio.Event()
    return [batch async for batch in source.batches(stop)]


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_ticks_are_ordered_by_time_and_ties_keep_file_order(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "ticks.csv",
        """
symbol,ts,price,size
MSFT,1715350000500,410.10,5
AAPL,1715350000000,183.00,100
AAPL,1715350000500,183.05,10
AAPL,1715350000500,183.04,20
msft,2024-05-10T14:06:40Z,410.00,7
""",
    )
    ticks = load_replay(csv)
    assert [(t.symbol, t.ts, t.price, t.size) for t in ticks] == [
        ("AAPL", 1715350000000, Decimal("183.00"), 100),
        ("MSFT", 1715350000000, Decimal("410.00"), 7),
        ("MSFT", 1715350000500, Decimal("410.10"), 5),
        ("AAPL", 1715350000500, Decimal("183.05"), 10),
        ("AAPL", 1715350000500, Decimal("183.04"), 20),
    ]
    assert {t.source for t in ticks} == {"replay"}


def test_bars_become_ticks_that_rebuild_the_same_bar(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "bars.csv",
        """
symbol,timestamp,open,high,low,close,volume
AAPL,2024-05-10T13:30:00Z,184.90,185.00,184.80,184.95,5123
AAPL,2024-05-10T13:31:00Z,184.95,185.09,184.70,184.75,7
""",
    )
    ticks = load_replay(csv)
    assert len(ticks) == 8
    for minute, (o, h, l_, c, v) in enumerate(
        [("184.90", "185.00", "184.80", "184.95", 5123), ("184.95", "185.09", "184.70", "184.75", 7)]
    ):
        bar = ticks[minute * 4 : minute * 4 + 4]
        start = 1715347800000 + minute * 60000
        assert all(start <= t.ts < start + 60000 for t in bar)
        prices = [t.price for t in bar]
        assert (prices[0], max(prices), min(prices), prices[-1]) == tuple(map(Decimal, (o, h, l_, c)))
        assert sum(t.size for t in bar) == v


def test_bad_rows_are_reported_with_their_line(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "bad.csv",
        """
symbol,ts,price
AAPL,1715350000000,183
AAPL,1715350000100,-1
""",
    )
    with pytest.raises(ReplayFormatError, match="row 3"):
        load_replay(csv)


async def test_speed_scales_recorded_time(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "ticks.csv",
        """
symbol,ts,price,size
AAPL,1715350000000,183.00,1
AAPL,1715350006000,183.01,1
AAPL,1715350012000,183.02,1
""",
    )
    started = time.monotonic()
    batches = await drain(ReplaySource(csv, speed=60))  # 12 recorded seconds -> 0.2 s
    elapsed = time.monotonic() - started
    assert [len(b) for b in batches] == [1, 1, 1]
    assert 0.18 <= elapsed < 1.0
    started = time.monotonic()
    fast = await drain(ReplaySource(csv, speed=0))
    assert time.monotonic() - started < 0.1 and sum(map(len, fast)) == 3


async def test_max_pause_caps_long_gaps_and_shift_moves_to_now(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "ticks.csv",
        """
symbol,ts,price,size
AAPL,1715350000000,183.00,1
AAPL,1715400000000,183.01,1
""",
    )
    started = time.monotonic()
    source = ReplaySource(csv, speed=1, max_pause_seconds=0.05, shift_to_now=True)
    ticks = [t for b in await drain(source) for t in b]
    assert time.monotonic() - started < 1.0
    assert abs(ticks[0].ts - time.time() * 1000) < 5000
    assert ticks[1].ts - ticks[0].ts == 50_000_000  # spacing kept, only moved


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    path = tmp_path / "ticks.parquet"
    table = pa.table(
        {
            "symbol": ["AAPL", "AAPL"],
            "ts": [1715350000000, 1715350001000],
            "price": ["183.00", "183.50"],
            "size": [10, 20],
        }
    )
    pq.write_table(table, path)
    ticks = load_replay(path)
    assert [(t.ts, t.price, t.size) for t in ticks] == [
        (1715350000000, Decimal("183.00"), 10),
        (1715350001000, Decimal("183.50"), 20),
    ]
