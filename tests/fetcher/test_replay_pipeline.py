"""A recorded CSV replayed through the whole pipeline: fetcher (PROVIDER=replay) -> tick streams ->
writer -> bars_1m, compared with 1-minute bars computed directly from the same CSV; the writer's
roller then brings the roll-ups (5m, 15m, 1h, 1d) level with the minutes and stops with it."""

from __future__ import annotations

import asyncio
import csv
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg

from tests.support.processes import Services
from tests.support.rollups import NO_DIFFERENCES, dirty_marks, rollup_differences
from tests.support.waiting import wait_until

START_MS = 1715347800000  # 2024-05-10 13:30 UTC, the open
SYMBOLS = ("AAPL", "MSFT", "NVDA")


def write_recording(path: Path, ticks_per_symbol: int) -> list[tuple[str, int, Decimal, int]]:
    rng = random.Random(7)
    rows = []
    for symbol in SYMBOLS:
        price = Decimal(rng.randint(100, 900))
        ts = START_MS
        for _ in range(ticks_per_symbol):
            ts += rng.randint(50, 2500)
            price = max(Decimal("1.00"), price + Decimal(rng.randint(-25, 25)) / 100)
            rows.append((symbol, ts, price, rng.choice([1, 10, 50, 100, 250])))
    rng.shuffle(rows)  # the file is not in time order; replay sorts it
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["symbol", "ts", "price", "size"])
        writer.writerows(rows)
    return rows


def bars_from(
    rows: list[tuple[str, int, Decimal, int]],
) -> list[tuple[str, int, Decimal, Decimal, Decimal, Decimal, int, int]]:
    grouped: dict[tuple[str, int], list[tuple[int, Decimal, int]]] = defaultdict(list)
    for symbol, ts, price, size in rows:
        grouped[(symbol, ts // 60000 * 60000)].append((ts, price, size))
    bars = []
    for (symbol, bucket), ticks in sorted(grouped.items()):
        ticks.sort()
        prices = [p for _, p, _ in ticks]
        bars.append(
            (
                symbol,
                bucket,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                sum(s for _, _, s in ticks),
                len(ticks),
            )
        )
    return bars


def test_replayed_csv_gives_the_bars_of_the_csv(services: Services, db_url: str, tmp_path: Path) -> None:
    recording = tmp_path / "recording.csv"
    rows = write_recording(recording, ticks_per_symbol=1500)
    expected = bars_from(rows)

    env = {"TICK_SHARDS": "2", "SYMBOLS": ",".join(SYMBOLS)}
    writer = services.start("writer", **env)
    writer.wait_healthy()
    fetcher = services.start(
        "fetcher", PROVIDER="replay", REPLAY_PATH=str(recording), REPLAY_SPEED="0", **env
    )
    assert fetcher.wait(60) == 0, fetcher.output()[-3000:]

    with psycopg.connect(db_url, autocommit=True) as conn:

        def landed() -> bool:
            """Every tick stored and counted in a bar (bars count their ticks in `trades`)."""
            assert writer.proc is not None and writer.proc.poll() is None, writer.output()[-3000:]
            row = conn.execute(
                "SELECT (SELECT count(*) FROM ticks WHERE source = 'replay'),"
                " (SELECT coalesce(sum(trades), 0) FROM bars_1m)"
            ).fetchone()
            return row is not None and row[0] >= len(rows) and row[1] >= len(rows)

        wait_until(landed, 60, "every replayed tick in ticks and bars_1m")
        (stored,) = conn.execute("SELECT count(*) FROM ticks WHERE source = 'replay'").fetchone()  # type: ignore[misc]
        actual = conn.execute(
            "SELECT symbol, (extract(epoch FROM bucket) * 1000)::bigint, open, high, low, close, volume, trades"
            " FROM bars_1m ORDER BY symbol, bucket"
        ).fetchall()
    assert stored == len(rows)
    assert len(expected) > 3 * 25
    assert [tuple(r) for r in actual] == expected

    async def rolled_up() -> bool:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            return await dirty_marks(conn) == 0 and await rollup_differences(conn) == NO_DIFFERENCES

    wait_until(lambda: asyncio.run(rolled_up()), 10, "roll-ups level with bars_1m")
    assert writer.terminate() == 0, writer.output()[-3000:]
    assert "bar roll-up round failed" not in writer.output()
