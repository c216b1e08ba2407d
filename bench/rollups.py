"""What keeping the bar roll-ups costs: a writer batch's bars_1m upsert with the marking
triggers on, beside the same upsert with them off, in one run on one database; and the roller
(`roll_up_dirty`, what the writer runs every ROLLUP_INTERVAL_MS off the commit path) in minute
bars per second.

Each batch holds one partial minute bar per symbol (the live case: every symbol ticked in the
batch), alternately a new minute (inserted rows) and the same minute again (grown rows, the
update path). The triggers then mark one 5-minute bucket per symbol dirty (a re-mark after the
first batch of a bucket). Rounds alternate on/off so a change in the machine's load falls on
both; after each round with triggers on, the roller drains its marks, timed: one claim of one
mark per symbol is what a live round costs.

Usage: python bench/rollups.py [--symbols 500] [--batches 40] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from stocktrack_common.bar_rollups import roll_up_dirty
from stocktrack_common.bars import UPSERT_1M, Bar, upsert_1m_params
from stocktrack_common.migrations import migrate
from stocktrack_devtools.servers import database_url, find_or_start

T0_MS = 1_790_000_040_000  # a minute boundary


def batch(symbols: int, minute: int, rng: random.Random) -> dict[tuple[str, int], Bar]:
    bars = {}
    bucket = T0_MS + minute * 60_000
    for s in range(symbols):
        ts = bucket + rng.randrange(60_000)
        bars[(f"S{s:04d}", bucket)] = Bar.of_tick(
            bucket, ts, Decimal(10_000 + rng.randrange(1_000)) / 100, 10
        )
    return bars


def timed_batches(conn: psycopg.Connection, symbols: int, batches: int, first_minute: int) -> list[float]:
    rng = random.Random(first_minute)
    times = []
    for i in range(batches):
        params = upsert_1m_params(batch(symbols, first_minute + i // 2, rng))
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(UPSERT_1M, params)
        times.append(time.perf_counter() - started)
    return times


async def timed_roll_up(url: str, limit: int) -> tuple[int, list[float]]:
    """Drain every mark in claims of `limit`: (marks claimed, seconds per claim)."""
    claimed, times = 0, list[float]()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            started = time.perf_counter()
            done = await roll_up_dirty(conn, limit)
            if not done.claimed:
                return claimed, times
            times.append(time.perf_counter() - started)
            claimed += done.claimed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500, help="bars per batch (one per symbol)")
    parser.add_argument("--batches", type=int, default=40, help="batches per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    servers = find_or_start(Path(tempfile.mkdtemp(prefix="stocktrack-bench-rollups-")), log=lambda m: None)
    name = f"bench_rollups_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = database_url(servers.postgres_url, name)
        migrate(url)
        times: dict[bool, list[float]] = {True: [], False: []}
        live_claims: list[float] = []  # one mark per symbol: a live round
        drained_marks, drain_seconds = 0, 0.0
        with psycopg.connect(url, autocommit=True) as conn:
            minute = 0
            for _ in range(args.rounds):
                for on in (True, False):
                    conn.execute(f"ALTER TABLE bars_1m {'ENABLE' if on else 'DISABLE'} TRIGGER USER")
                    measured = timed_batches(conn, args.symbols, args.batches, minute)
                    times[on] += measured[2:]  # the first batches of a round plan the statements
                    minute += args.batches
                    if on:
                        marks, claims = asyncio.run(timed_roll_up(url, args.symbols))
                        live_claims += claims
                        drained_marks += marks
                        drain_seconds += sum(claims)
            conn.execute("ALTER TABLE bars_1m ENABLE TRIGGER USER")
        print(
            f"bars_1m upsert of {args.symbols} bars per batch, {args.rounds} rounds of {args.batches} batches"
            f" (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
        )
        for on, label in ((False, "triggers off (bars_1m only)"), (True, "triggers on (marks dirty)")):
            ordered = sorted(times[on])
            p90 = ordered[int(0.9 * (len(ordered) - 1))]
            print(
                f"  {label:<30} median {statistics.median(ordered) * 1000:7.2f} ms   p90 {p90 * 1000:7.2f} ms"
            )
        ratio = statistics.median(times[True]) / statistics.median(times[False])
        print(f"  ratio on / off                 {ratio:7.2f}x")
        # Each mark stands for the minutes of one (symbol, 5-minute bucket) the batches wrote.
        bars = args.rounds * (args.batches // 2) * args.symbols
        print(
            f"roller: {drained_marks} marks ({bars} minute bars) in {drain_seconds * 1000:.1f} ms:"
            f" {bars / drain_seconds:,.0f} bars/s; one claim of {args.symbols} marks (a live round)"
            f" median {statistics.median(live_claims) * 1000:.2f} ms"
        )
    finally:
        with psycopg.connect(servers.postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        servers.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
