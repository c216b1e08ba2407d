"""Backfill: idempotent, resumable after a kill, rate-limited, and the offline CSV path."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest
import pytest_asyncio
import redis
from aiohttp import web

from fetcher.backfill import backfill, chunk_ranges
from fetcher.backfill_cli import main as backfill_main
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text
from tests.support.processes import child_env
from tests.support.waiting import wait_until_async

DAILY_ROWS = (
    "SELECT symbol, day, open, high, low, close, adj_close, volume, source FROM daily_bars ORDER BY 1, 2"
)
MINUTE_ROWS = "SELECT symbol, bucket, open, high, low, close, volume, trades FROM bars_1m ORDER BY 1, 2"


def rows(db_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchall()


def test_chunks_cover_the_range_exactly() -> None:
    assert chunk_ranges(date(2015, 6, 15), date(2017, 2, 1), "1d") == [
        (date(2015, 6, 15), date(2015, 12, 31)),
        (date(2016, 1, 1), date(2016, 12, 31)),
        (date(2017, 1, 1), date(2017, 2, 1)),
    ]
    months = chunk_ranges(date(2024, 1, 31), date(2024, 3, 1), "1m")
    assert months == [
        (date(2024, 1, 31), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 1)),
    ]


async def test_daily_backfill_twice_yields_the_same_rows(fake_provider: FakeProvider, db_url: str) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    client = clients.alphavantage(fake_provider.url, plan="premium")
    try:
        first = await backfill(
            db_url,
            client,
            ["IBM"],
            date(2023, 1, 1),
            date(2024, 12, 31),
            progress=False,
            today=date(2025, 1, 10),
        )
        after_first = rows(db_url, DAILY_ROWS)
        second = await backfill(
            db_url,
            client,
            ["IBM"],
            date(2023, 1, 1),
            date(2024, 12, 31),
            progress=False,
            today=date(2025, 1, 10),
        )
    finally:
        await client.aclose()
    assert first.rows == 4 and first.chunks_done == 2
    assert second.rows == 0 and second.chunks_skipped == 2  # resumed: nothing left to do
    assert rows(db_url, DAILY_ROWS) == after_first
    may9 = next(r for r in after_first if r[1] == date(2024, 5, 9))
    assert may9[5] == Decimal("167.1500") and may9[6] == Decimal("165.4800") and may9[8] == "alphavantage"
    # Without the progress records the upsert alone is idempotent too.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM backfill_progress")
    client = clients.alphavantage(fake_provider.url, plan="premium")
    try:
        third = await backfill(
            db_url,
            client,
            ["IBM"],
            date(2023, 1, 1),
            date(2024, 12, 31),
            progress=False,
            today=date(2025, 1, 10),
        )
    finally:
        await client.aclose()
    assert third.rows == 0
    assert rows(db_url, DAILY_ROWS) == after_first


async def test_a_raw_source_never_overwrites_an_adjusted_close(
    fake_provider: FakeProvider, db_url: str
) -> None:
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    fake_provider.script("/query?function=TIME_SERIES_DAILY", Reply(fixture_text("alphavantage/daily.json")))
    adjusted = clients.alphavantage(fake_provider.url, plan="premium")
    raw = clients.alphavantage(fake_provider.url)  # free: the raw series only
    try:
        await backfill(db_url, adjusted, ["IBM"], date(2024, 1, 1), date(2024, 12, 31), progress=False)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM backfill_progress")
        await backfill(db_url, raw, ["IBM"], date(2024, 1, 1), date(2024, 12, 31), progress=False)
    finally:
        await adjusted.aclose()
        await raw.aclose()
    may9 = next(r for r in rows(db_url, DAILY_ROWS) if r[1] == date(2024, 5, 9))
    assert may9[5] == Decimal("167.1500") and may9[6] == Decimal("165.4800")  # adjusted close kept


async def test_minute_backfill_is_idempotent_and_the_current_month_stays_open(
    fake_provider: FakeProvider, db_url: str
) -> None:
    fake_provider.script("/v2/stocks/AAPL/bars", Reply(fixture_text("alpaca/bars_1min.json")))
    client = clients.alpaca(fake_provider.url)
    try:
        first = await backfill(
            db_url,
            client,
            ["AAPL"],
            date(2024, 5, 10),
            date(2024, 5, 10),
            "1m",
            progress=False,
            today=date(2024, 5, 10),
        )
        second = await backfill(
            db_url,
            client,
            ["AAPL"],
            date(2024, 5, 10),
            date(2024, 5, 10),
            "1m",
            progress=False,
            today=date(2024, 5, 10),
        )
    finally:
        await client.aclose()
    assert first.rows == 2
    assert second.rows == 0 and second.chunks_done == 1  # today is never marked complete: fetched again
    stored = rows(db_url, MINUTE_ROWS)
    assert [(r[2], r[5], r[6], r[7]) for r in stored] == [
        (Decimal("184.9"), Decimal("184.95"), 5120, 61),
        (Decimal("184.95"), Decimal("185.05"), 3311, 40),
    ]


async def test_provider_failures_are_reported_and_other_symbols_continue(
    fake_provider: FakeProvider, db_url: str
) -> None:
    fake_provider.script("/query?function=TIME_SERIES_DAILY_ADJUSTED&symbol=BAD", Reply("down", status=500))
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY_ADJUSTED", Reply(fixture_text("alphavantage/daily_adjusted.json"))
    )
    client = clients.alphavantage(fake_provider.url, attempts=1, plan="premium")
    try:
        result = await backfill(
            db_url,
            client,
            ["BAD", "IBM"],
            date(2024, 1, 1),
            date(2024, 12, 31),
            progress=False,
            today=date(2025, 1, 10),
        )
    finally:
        await client.aclose()
    assert result.failures == ["BAD 2024-01-01..2024-12-31: server_error"]
    assert {r[0] for r in rows(db_url, DAILY_ROWS)} == {"IBM"}


async def test_free_key_backfill_from_2015_uses_free_endpoints_within_the_daily_quota(
    fake_provider: FakeProvider, db_url: str, redis_url: str, prefix: str
) -> None:
    """`stocktrack backfill --provider alphavantage --symbols IBM --from 2015-01-01` on a free key."""
    fake_provider.script(
        "/query?function=TIME_SERIES_DAILY", Reply(fixture_text("alphavantage/daily_compact.json"))
    )
    env = child_env(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        STREAM_PREFIX=prefix,
        ALPHAVANTAGE_API_KEY=clients.AV_KEY,
        ALPHAVANTAGE_BASE_URL=fake_provider.url,
        ALPHAVANTAGE_REQUESTS_PER_MINUTE="600",
        LOG_LEVEL="WARNING",
    )
    argv = [sys.executable, "-m", "stocktrack_common.cli", "backfill", "--provider", "alphavantage"]
    argv += ["--symbols", "IBM", "--from", "2015-01-01", "--to", "2026-11-27", "--no-progress"]
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    sent = [(r.query["function"], r.query.get("outputsize")) for r in fake_provider.requests]
    assert sent == [("TIME_SERIES_DAILY", "compact")]  # one free request; the old code made 44
    stored = rows(db_url, DAILY_ROWS)
    assert len(stored) == 100 and stored[0][1] == date(2026, 7, 9)
    # 2015..2025 lie beyond what the plan serves: not requested, and no chunk is marked complete.
    assert rows(db_url, "SELECT chunk_start FROM backfill_progress") == []
    with redis.Redis.from_url(redis_url) as client:
        used = [int(client.get(key) or 0) for key in client.scan_iter(match=f"{prefix}:quota:alphavantage:*")]
    assert used == [1]  # the shared daily budget counted it


def month_of_bars(symbol: str, month: str) -> dict[str, object]:
    """Three 1-minute bars on the 10th of the month, in Alpha Vantage's intraday shape."""
    series = {}
    for minute in range(3):
        series[f"{month}-10 10:0{minute}:00"] = {
            "1. open": "100.0000",
            "2. high": "101.0000",
            "3. low": "99.5000",
            "4. close": f"{100 + minute}.5000",
            "5. volume": str(1000 + minute),
        }
    return {"Meta Data": {"2. Symbol": symbol, "6. Time Zone": "US/Eastern"}, "Time Series (1min)": series}


@pytest_asyncio.fixture
async def slow_intraday() -> AsyncIterator[tuple[str, list[str]]]:
    calls: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        calls.append(f"{request.query['symbol']} {request.query['month']}")
        await asyncio.sleep(0.15)
        body = month_of_bars(request.query["symbol"], request.query["month"])
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/query", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", calls
    await runner.cleanup()


async def test_backfill_killed_midway_completes_on_rerun(
    slow_intraday: tuple[str, list[str]], db_url: str, tmp_path: Path
) -> None:
    url, calls = slow_intraday
    env = child_env(
        DATABASE_URL=db_url,
        ALPHAVANTAGE_API_KEY=clients.AV_KEY,
        ALPHAVANTAGE_BASE_URL=url,
        ALPHAVANTAGE_REQUESTS_PER_MINUTE="60000",
        ALPHAVANTAGE_PLAN="premium",
        ALPHAVANTAGE_REQUESTS_PER_DAY="0",
        LOG_LEVEL="WARNING",
    )
    argv = [
        sys.executable,
        "-m",
        "stocktrack_common.cli",
        "backfill",
        "--provider",
        "alphavantage",
        "--symbols",
        "AAA,BBB,CCC",
        "--from",
        "2024-01-01",
        "--to",
        "2024-06-30",
        "--interval",
        "1m",
        "--no-progress",
    ]
    total_chunks = 3 * 6

    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await wait_until_async(
        lambda: len(rows(db_url, "SELECT 1 FROM backfill_progress")) >= 5, 30, "the backfill to make progress"
    )
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    done_at_kill = len(rows(db_url, "SELECT 1 FROM backfill_progress"))
    assert done_at_kill < total_chunks
    calls_before = len(calls)

    rerun = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(rerun.communicate(), 60)
    assert rerun.returncode == 0, err.decode()[-2000:]

    assert len(rows(db_url, "SELECT 1 FROM backfill_progress")) == total_chunks
    assert len(calls) - calls_before <= total_chunks - done_at_kill + 1  # resumed, not restarted
    stored = rows(db_url, MINUTE_ROWS)
    assert len(stored) == total_chunks * 3
    expected_first = datetime.fromisoformat("2024-01-10T15:00:00+00:00")  # 10:00 EST
    assert stored[0][1] == expected_first and stored[0][6] == 1000
    buckets = [r[1] for r in stored]
    assert all(isinstance(b, datetime) and b.minute < 3 for b in buckets)
    assert buckets[1] - buckets[0] == timedelta(minutes=1)  # type: ignore[operator]


def test_csv_backfill_loads_a_local_file_idempotently(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "prices.csv"
    csv.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-05-09,182.56,184.66,182.11,184.57,184.33,48983000\n"
        "2024-05-10,184.90,185.09,182.13,183.05,183.05,50759500\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert backfill_main(["--csv", str(csv), "--symbols", "AAPL", "--no-progress"]) == 0
    first = rows(db_url, DAILY_ROWS)
    assert backfill_main(["--csv", str(csv), "--symbols", "AAPL", "--no-progress"]) == 0
    assert rows(db_url, DAILY_ROWS) == first
    assert [(r[0], r[1], r[6], r[7], r[8]) for r in first] == [
        ("AAPL", date(2024, 5, 9), Decimal("184.33"), 48983000, "csv"),
        ("AAPL", date(2024, 5, 10), Decimal("183.05"), 50759500, "csv"),
    ]


def test_csv_backfill_rejects_a_bad_file_before_writing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("Date,Open,High,Low,Close,Volume\n2024-05-09,1,2,0.5,1.5,10\n2024-05-10,x,2,1,1,10\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert backfill_main(["--csv", str(csv), "--symbols", "AAPL", "--no-progress"]) == 1
    assert rows(db_url, DAILY_ROWS) == []


def test_cli_needs_a_start_day_for_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "k")
    assert backfill_main(["--provider", "alphavantage", "--symbols", "IBM"]) == 2
    assert os.environ.get("ALPHAVANTAGE_API_KEY") == "k"


async def test_alpaca_daily_backfill_of_many_symbols_uses_the_multi_symbol_endpoint(
    fake_provider: FakeProvider, db_url: str
) -> None:
    fake_provider.script(
        "/v2/stocks/bars?adjustment=raw", Reply(fixture_text("alpaca/bars_multi_1day_raw.json"))
    )
    fake_provider.script(
        "/v2/stocks/bars?adjustment=all", Reply(fixture_text("alpaca/bars_multi_1day_all.json"))
    )
    client = clients.alpaca(fake_provider.url)
    try:
        result = await backfill(
            db_url, client, ["AAPL", "MSFT"], date(2022, 1, 1), date(2024, 12, 31), progress=False
        )
    finally:
        await client.aclose()
    assert result.rows == 3 and not result.failures
    # Two requests for 2 symbols x 3 yearly chunks, instead of 2 per symbol and chunk (12).
    assert [(r.path, r.query["adjustment"], r.query["symbols"]) for r in fake_provider.requests] == [
        ("/v2/stocks/bars", "all", "AAPL,MSFT"),
        ("/v2/stocks/bars", "raw", "AAPL,MSFT"),
    ]
    assert {r.query["feed"] for r in fake_provider.requests} == {"sip"}
    msft = next(r for r in rows(db_url, DAILY_ROWS) if r[0] == "MSFT")
    assert msft[5] == Decimal("414.74") and msft[6] == Decimal("413.92")
