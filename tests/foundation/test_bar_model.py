"""One bar model: every consumer that builds 1-minute bars gets the same bars from the same ticks.

The ticks include equal timestamps from several sources with different prices, at the first
and the last millisecond of a minute, where the order rule (ticks ordered by (ts, price): open
is the first, close the last) decides open and close. Each permutation reaches:

- the writer (`TickSink`, what the writer service runs per batch): shuffled across minutes and
  cut into batches, some of them redelivering ticks stored already, so the bars are folded in
  Python (new batches) and in SQL (batches with a stored tick) and merged into `bars_1m`;
- the janitor's roll-up of a tick partition, the ticks inserted in shuffled order;
- the streamer, the recommender and alerts, which close a bar when the next minute starts:
  minutes arrive in order, the ticks inside each minute (and the symbols) shuffled.

The expected bars come from sorting each minute's ticks, independently of the model's fold.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from decimal import Decimal
from itertools import groupby

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from alerts.condition_state import SymbolState
from alerts.evaluator import close_minute
from janitor.tick_partitions import roll_up_missing_bars
from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.bars import MINUTE_MS, Bar, bucket_of
from stocktrack_common.messages import Tick, TickRow
from stocktrack_common.partitions import ensure_tick_partitions, partition_name
from streamer.minute_bars import MinuteBars
from writer.tick_sink import TickSink

T0 = 1_790_000_040_000  # a minute boundary
SYMBOLS = ("AAPL", "BRK.B")
SOURCES = ("alpaca", "finnhub", "sim")
FIRST, LAST = 1, 3  # minutes T0 + 1..3 carry the ties; minutes 0 and 4 bracket them
PERMUTATIONS = range(5)

Key = tuple[str, int]


def make_ticks() -> list[Tick]:
    """Ticks of minutes 0..4 per symbol; in minutes 1..3 three sources tick at the first and last ms."""
    rng = random.Random(13)
    ticks: list[Tick] = []

    def tick(symbol: str, ts: int, price: Decimal, source: str) -> None:
        ticks.append(Tick(symbol=symbol, ts=ts, price=price, size=rng.randrange(1, 500), source=source))

    for symbol in SYMBOLS:
        base = Decimal(100 if symbol == "AAPL" else 400)
        tick(symbol, T0 + 30_000, base, "sim")
        for minute in range(FIRST, LAST + 1):
            start = T0 + minute * MINUTE_MS
            for ts in (start, start + 59_999):
                prices = rng.sample(range(-300, 300), len(SOURCES))
                for source, cents in zip(SOURCES, prices, strict=True):
                    tick(symbol, ts, base + Decimal(cents) / 100, source)
            # Equal (ts, price) from two sources: whichever is taken, the close is the same.
            twin = base + Decimal(rng.randrange(-300, 300)) / 100
            tick(symbol, start + 59_999, twin, "zz-a")
            tick(symbol, start + 59_999, twin, "zz-b")
            for offset in rng.sample(range(1, 59_999), 6):
                tick(symbol, start + offset, base + Decimal(rng.randrange(-500, 500)) / 100, "sim")
        tick(symbol, T0 + (LAST + 1) * MINUTE_MS + 1, base, "sim")
    return ticks


def expected_bars(ticks: Iterable[Tick]) -> dict[Key, Bar]:
    by_bar: dict[Key, list[Tick]] = {}
    for t in ticks:
        by_bar.setdefault((t.symbol, t.ts - t.ts % MINUTE_MS), []).append(t)
    bars = {}
    for (symbol, bucket), items in by_bar.items():
        ordered = sorted(items, key=lambda t: (t.ts, t.price))
        prices = [t.price for t in ordered]
        bars[(symbol, bucket)] = Bar(
            bucket,
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(t.size for t in ordered),
            len(ordered),
            ordered[0].ts,
            ordered[-1].ts,
        )
    return bars


def shuffled(ticks: list[Tick], seed: int) -> list[Tick]:
    out = list(ticks)
    random.Random(seed).shuffle(out)
    return out


def shuffled_within_minutes(ticks: list[Tick], seed: int) -> list[Tick]:
    """Minutes in order; inside a minute, every symbol's ticks in a random order."""
    rng = random.Random(seed)
    out: list[Tick] = []
    for _, minute in groupby(sorted(ticks, key=lambda t: bucket_of(t.ts)), key=lambda t: bucket_of(t.ts)):
        items = list(minute)
        rng.shuffle(items)
        out.extend(items)
    return out


def row(t: Tick) -> TickRow:
    return (
        t.symbol.encode(),
        str(t.ts).encode(),
        format(t.price, "f").encode(),
        str(t.size).encode(),
        t.source.encode(),
        b"",
    )


def interior(bars: dict[Key, Bar]) -> dict[Key, Bar]:
    """The bars of minutes FIRST..LAST: a streaming consumer never closes the bracketing ones."""
    return {k: b for k, b in bars.items() if T0 + FIRST * MINUTE_MS <= k[1] <= T0 + LAST * MINUTE_MS}


async def stored_bars(conn: psycopg.AsyncConnection) -> dict[Key, Bar]:
    cur = await conn.execute(
        "SELECT symbol, (extract(epoch FROM bucket) * 1000)::bigint, open, high, low, close, volume, trades,"
        " (extract(epoch FROM first_ts) * 1000)::bigint, (extract(epoch FROM last_ts) * 1000)::bigint"
        " FROM bars_1m"
    )
    return {(r[0], r[1]): Bar(*r[1:]) for r in await cur.fetchall()}


def streamed(ticks: list[Tick], fold: Callable[[Tick], Bar | None]) -> dict[Key, Bar]:
    closed: dict[Key, Bar] = {}
    for t in ticks:
        bar = fold(t)
        if bar is not None:
            assert (t.symbol, bar.bucket) not in closed, "a bar closed twice"
            closed[(t.symbol, bar.bucket)] = bar
    return closed


@pytest.fixture(scope="module")
def ticks() -> list[Tick]:
    return make_ticks()


@pytest.fixture(scope="module")
def expected(ticks: list[Tick]) -> dict[Key, Bar]:
    bars = expected_bars(ticks)
    ties = [
        b
        for k, b in interior(bars).items()
        if b.first_ts % MINUTE_MS == 0 and b.last_ts % MINUTE_MS == 59_999
    ]
    assert len(ties) == len(SYMBOLS) * (LAST - FIRST + 1), "every interior minute opens and closes on a tie"
    return bars


@pytest.mark.parametrize("seed", PERMUTATIONS)
async def test_writer_stores_the_model_bars_whatever_the_order_and_batching(
    pg_pool: AsyncConnectionPool, ticks: list[Tick], expected: dict[Key, Bar], seed: int
) -> None:
    rng = random.Random(seed)
    order = shuffled(ticks, seed)
    cuts = sorted(rng.sample(range(1, len(order)), 4))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    sink = TickSink()
    sent: list[Tick] = []
    inserted = 0
    for batch in batches:
        # Redeliver a few stored ticks with the batch: it then takes the SQL path (staging table).
        redelivered = rng.sample(sent, min(len(sent), 3)) if rng.random() < 0.5 else []
        async with pg_pool.connection() as conn:
            result = await sink.write(conn, [row(t) for t in [*redelivered, *batch]])
        assert result.duplicates == len(redelivered)
        inserted += result.inserted
        sent += batch
    assert inserted == len(ticks)
    async with pg_pool.connection() as conn:
        assert await stored_bars(conn) == expected


async def test_writer_python_and_sql_folds_agree(
    pg_pool: AsyncConnectionPool, ticks: list[Tick], expected: dict[Key, Bar]
) -> None:
    """The same partial batches once through the Python fold, once through the SQL fold."""
    order = shuffled(ticks, 99)
    half = len(order) // 2
    sink = TickSink()
    async with pg_pool.connection() as conn:
        await sink.write(conn, [row(t) for t in order[:half]])  # new ticks only: Python fold
        result = await sink.write(conn, [row(t) for t in order])  # half stored: SQL fold of the rest
        assert (result.inserted, result.duplicates) == (len(order) - half, half)
        assert await stored_bars(conn) == expected


@pytest.mark.parametrize("seed", PERMUTATIONS)
async def test_janitor_roll_up_builds_the_model_bars(
    db_url: str, ticks: list[Tick], expected: dict[Key, Bar], seed: int
) -> None:
    day = dt.datetime.fromtimestamp(T0 / 1000, tz=dt.UTC).date()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await ensure_tick_partitions(conn, [day])
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO ticks (symbol, ts, price, size, source)"
                " VALUES (%s, timestamptz 'epoch' + %s * interval '1 millisecond', %s, %s, %s)",
                [(t.symbol, t.ts, t.price, t.size, t.source) for t in shuffled(ticks, seed)],
            )
        assert await roll_up_missing_bars(conn, partition_name(day)) == len(expected)
        assert await stored_bars(conn) == expected


@pytest.mark.parametrize("seed", PERMUTATIONS)
def test_streamer_recommender_and_alerts_close_the_model_bars(
    ticks: list[Tick], expected: dict[Key, Bar], seed: int
) -> None:
    order = shuffled_within_minutes(ticks, seed)
    want = interior(expected)

    minute_bars = MinuteBars()

    def streamer(t: Tick) -> Bar | None:
        closed, used = minute_bars.add(t)
        assert used and len(closed) <= 1
        return closed[0] if closed else None

    assert streamed(order, streamer) == want

    builders: dict[str, BarBuilder] = {}

    def recommender(t: Tick) -> Bar | None:
        closed, used = builders.setdefault(t.symbol, BarBuilder(MINUTE_MS)).add(t.ts, t.price, t.size)
        assert used and len(closed) <= 1
        return closed[0] if closed else None

    assert interior(streamed(order, recommender)) == want

    states: dict[str, SymbolState] = {}
    assert (
        interior(streamed(order, lambda t: close_minute(states.setdefault(t.symbol, SymbolState()), t)))
        == want
    )
