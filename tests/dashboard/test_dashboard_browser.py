"""The dashboard in headless Chromium against a running stack (sim fetcher, writer, api, streamer).

One stack, one page visit: recovery from 429s at load (watch list and stream), live prices,
the crosshair readout (OHLC, volume, indicators), signal markers and list (reasons, confidence,
only on their own interval), local time with the UTC toggle, 15m bars, a symbol added
through the page with a write key that then streams, and the models page showing the reports of
two real trainings (backtests on either side, a model picked from the list) with their numbers.

The browser reaches the stack through a path-routing proxy, as it reaches a deployment through
the chart's ingress: the page and its live stream share one origin. Uses Debian's Chromium
through Playwright's driver; no browser is downloaded. Screenshots go to artifacts/dashboard/
(git-ignored) so a run can be inspected afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import bokeh_sampledata
import psycopg
import pytest
from pydantic import SecretStr

from fetcher.providers.sim import SimMarket
from recommender.train_cli import train
from stocktrack_common.api_keys import create_key
from stocktrack_common.daily_bars_csv import load_daily_bars_csv
from stocktrack_common.settings import CommonSettings
from tests.dashboard import seed
from tests.dashboard.ingress import running_ingress
from tests.support.processes import Services

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
SYMBOLS = "AAPL,MSFT"
ADDED = "IBM"
PEPPER = "dashboard-test-pepper"
# No daylight saving time, and nine hours from UTC: local and UTC readouts never agree.
ZONE = "Asia/Tokyo"
TIMEOUT_MS = 30_000
# Real daily history for the trainings the models page shows (bokeh's public-domain sample);
# not a watched symbol, so the watch list and charts above are unaffected.
STOCKS_CSV = Path(os.path.dirname(bokeh_sampledata.__file__)) / "_data" / "stocks.csv.gz"
TRAINED = "GOOG"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it)"
)


def seed_history(db_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for symbol, state in SimMarket(SYMBOLS.split(",")).states.items():
            # History that ends where the simulator starts, so live candles continue the chart.
            seed.minute_bars(conn, symbol, 420, now, state.price)
            seed.previous_close(conn, symbol, now.date() - dt.timedelta(days=1), state.price * 0.99)
        aapl = SimMarket(["AAPL"]).states["AAPL"].price
        minutes_ago = [(now - dt.timedelta(minutes=m), a, aapl) for m, a in ((95, "buy"), (40, "sell"))]
        seed.signals(conn, "AAPL", minutes_ago)  # no interval recorded: 1-minute signals
        seed.signals(
            conn, "AAPL", [(now - dt.timedelta(minutes=12), "buy", aapl)], interval="1m", confidence=0.65
        )
        # A daily model's signal: belongs on the 1d chart, never on the minute candles.
        seed.signals(conn, "AAPL", [(now - dt.timedelta(minutes=30), "sell", aapl)], interval="1d")


def train_models(
    db_url: str, redis_url: str, prefix: str, out: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two real trainings on real daily bars, so the models page shows what the recommender wrote.

    The first is left as its gate decides; the second is activated whatever its gate says (and
    replaces the first if that one passed): (active report, inactive report).
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        load_daily_bars_csv(conn, STOCKS_CSV, source="bokeh-sampledata", symbols=[TRAINED])
    settings = CommonSettings(
        database_url=SecretStr(db_url), redis_url=SecretStr(redis_url), stream_prefix=prefix
    )
    common = ["--symbols", TRAINED, "--folds", "3", "--no-progress", "--output-dir", str(out)]
    inactive = train([*common, "--horizon", "10"], settings)
    active = train([*common, "--force"], settings)
    return active, inactive


def pct(value: float) -> str:
    """A fraction as the models page writes it."""
    return f"{value * 100:.1f}%"


async def write_key(db_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        _, key = await create_key(conn, "dashboard-test", ["read", "write"], PEPPER)
    return key


def readout_time(page: Page) -> tuple[int, str]:
    """The readout's bar time (UTC seconds) and its text, read together."""
    ts, text = page.evaluate(
        "() => { const el = document.querySelector('#readout [data-field=time]');"
        " return [Number(el.dataset.ts), el.textContent]; }"
    )
    return int(ts), str(text)


def clock_text(ts: int, zone: str) -> str:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%H:%M")


def test_dashboard_recovers_streams_reads_out_and_adds_symbols(
    services: Services, db_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    seed_history(db_url)
    active, inactive = train_models(db_url, redis_url, prefix, tmp_path / "training")
    key = asyncio.run(write_key(db_url))
    env = {"SYMBOLS": SYMBOLS, "TICK_SHARDS": "2"}
    # The fetcher also prices ADDED, which the page adds through the api during the test.
    fetched = {**env, "SYMBOLS": f"{SYMBOLS},{ADDED}"}
    writer = services.start("writer", **fetched)
    # The page sends its key to the streamer too, which verifies it with the api's pepper.
    streamer = services.start("streamer", API_KEY_PEPPER=PEPPER, **env)
    api = services.start("api", DASHBOARD_STREAM_URL="", API_KEY_PEPPER=PEPPER, **env)
    fetcher = services.start("fetcher", SIM_TICKS_PER_SECOND="6", **fetched)
    for proc in (writer, streamer, api, fetcher):
        proc.wait_healthy()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # The first two watch-list requests and the first stream request are refused with 429.
    refuse = {"/v1/dashboard/watchlist": 2, "/v1/stream": 1}
    with running_ingress(api.port, streamer.port, refuse) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(
            viewport={"width": 1440, "height": 1000}, timezone_id=ZONE, locale="en-US"
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/")

        # Recovery: the page says it is waiting on a 429, then loads without a reload.
        expect(page.locator("#load-status")).to_contain_text("429", timeout=TIMEOUT_MS)
        page.screenshot(path=str(ARTIFACTS / "watchlist-retrying.png"))
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
        expect(page.locator("#load-status")).to_be_hidden()
        rows = page.locator("#watchlist tbody tr")
        expect(rows).to_have_count(2)
        aapl_price = page.locator('#watchlist tr[data-symbol="AAPL"] .price')
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
        expect(aapl_price).to_have_attribute("data-ts", re.compile(r"^\d+$"), timeout=TIMEOUT_MS)
        first_ts = int(aapl_price.get_attribute("data-ts") or 0)
        page.wait_for_function(
            "t => Number(document.querySelector('#watchlist tr[data-symbol=\"AAPL\"] .price').dataset.ts) > t",
            arg=first_ts,
            timeout=TIMEOUT_MS,
        )
        change = page.locator('#watchlist tr[data-symbol="AAPL"] .change').inner_text()
        assert "%" in change, change
        assert page.locator('#watchlist tr[data-symbol="AAPL"] svg polyline').count() == 1

        chart = page.locator("#price-chart")
        expect(chart).to_have_attribute("data-loading", "false", timeout=TIMEOUT_MS)
        bars_1m = int(chart.get_attribute("data-bars") or 0)
        assert bars_1m >= 400, bars_1m
        assert (
            page.locator("#rsi-chart canvas").count() > 0 and page.locator("#macd-chart canvas").count() > 0
        )
        expect(page.locator("#chart-title")).to_have_text("AAPL")
        # Three 1-minute signals (two recorded without an interval); the daily one stays off.
        signal_list = page.locator("#signal-list")
        expect(signal_list).to_have_attribute("data-count", "3")
        expect(signal_list).to_have_attribute("data-markers", "3")
        expect(signal_list.locator("li.signal").first).to_contain_text("65%")
        expect(signal_list.locator("li.signal").first).to_contain_text("RSI 27.4 below 30")

        # Local time: the browser runs in ZONE; the axis names it, the readout speaks it.
        axis = page.locator("#time-axis-label")
        expect(axis).to_contain_text(ZONE)
        ts, text = readout_time(page)
        assert clock_text(ts, ZONE) in text, (ts, text)
        page.locator("#tz-toggle").click()
        expect(axis).to_have_text(re.compile(r"UTC$"))
        ts, text = readout_time(page)
        assert clock_text(ts, "UTC") in text and clock_text(ts, ZONE) not in text, (ts, text)
        page.locator("#tz-toggle").click()
        expect(axis).to_contain_text(ZONE)

        # Hover: the readout follows the crosshair to an older bar, with OHLC and indicators.
        box = chart.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        readout = page.locator("#readout")
        expect(readout).to_have_attribute("data-hover", "true")
        hovered_ts, hovered_text = readout_time(page)
        assert clock_text(hovered_ts, ZONE) in hovered_text
        assert hovered_ts < ts, (hovered_ts, ts)
        number = re.compile(r"^-?[\d,]+\.\d+$")
        for field in ("open", "high", "low", "close", "sma50", "sma200", "ema", "rsi", "macd", "macdSignal"):
            expect(page.locator(f'.chart-panel [data-field="{field}"]')).to_have_text(number)
        expect(page.locator('#readout [data-field="volume"]')).to_have_text(re.compile(r"^[\d,]+$"))
        page.screenshot(path=str(ARTIFACTS / "watchlist-hover.png"))

        # A marker's reasons: centre the chart on the newest signal, then point at its bar.
        signal_list.locator("li.signal").first.click()
        tip = page.locator("#signal-tip")
        plot_width = box["width"] - 80  # the price scale is at least 72 px wide
        for dx in range(-12, 13, 2):
            page.mouse.move(box["x"] + plot_width / 2 + dx, box["y"] + box["height"] * 0.5)
            if tip.is_visible():
                break
        expect(tip).to_be_visible()
        expect(tip).to_contain_text("65% confidence")
        expect(tip).to_contain_text("RSI 27.4 below 30")
        page.screenshot(path=str(ARTIFACTS / "watchlist-signal-tip.png"))
        page.mouse.move(0, 0)

        page.locator('.intervals button[data-interval="15m"]').click()
        expect(chart).to_have_attribute("data-interval", "15m")
        expect(chart).to_have_attribute("data-loading", "false", timeout=TIMEOUT_MS)
        bars_15m = int(chart.get_attribute("data-bars") or 0)
        assert 0 < bars_15m < bars_1m
        expect(signal_list).to_have_attribute("data-count", "0")
        page.screenshot(path=str(ARTIFACTS / "watchlist-15m.png"), full_page=True)
        # The daily model's signal belongs to the 1d chart.
        page.locator('.intervals button[data-interval="1d"]').click()
        expect(chart).to_have_attribute("data-interval", "1d")
        expect(chart).to_have_attribute("data-loading", "false", timeout=TIMEOUT_MS)
        expect(signal_list).to_have_attribute("data-count", "1")
        expect(page.locator("#time-axis-label")).to_contain_text("UTC calendar day")
        page.screenshot(path=str(ARTIFACTS / "watchlist-1d.png"), full_page=True)

        # Adding a symbol needs a write key: the page asks for one, then the symbol streams.
        page.locator("#symbol-input").fill(ADDED)
        page.locator("#symbol-input").press("Enter")
        expect(page.locator("#key-form")).to_be_visible()
        expect(page.locator("#symbol-message")).to_contain_text("API key")
        page.locator("#key-input").fill(key)
        page.locator("#key-input").press("Enter")
        expect(rows).to_have_count(3, timeout=TIMEOUT_MS)
        expect(page.locator("#chart-title")).to_have_text(ADDED)
        added_price = page.locator(f'#watchlist tr[data-symbol="{ADDED}"] .price')
        expect(added_price).to_have_attribute("data-ts", re.compile(r"^\d+$"), timeout=TIMEOUT_MS)
        page.wait_for_function(
            't => Number(document.querySelector(`#watchlist tr[data-symbol="${t[0]}"] .price`).dataset.ts) > t[1]',
            arg=[ADDED, int(added_price.get_attribute("data-ts") or 0)],
            timeout=TIMEOUT_MS,
        )
        page.screenshot(path=str(ARTIFACTS / "watchlist-added.png"), full_page=True)

        page.goto(f"{base}/models")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
        expect(page.locator("#models-table tbody tr")).to_have_count(2)
        # The active model's report: its backtest with the figures its training wrote.
        report = page.locator("#model-report-body")
        expect(report).to_have_attribute("data-model", active["model_id"])
        expect(report).to_contain_text("Rule engine")
        backtest = page.locator("#backtest-table")
        for strategy in ("model", "rules", "buy_and_hold"):
            figures = active["backtest"]["strategies"][strategy]
            row = backtest.locator(f"tr[data-strategy='{strategy}']")
            expect(row.locator("[data-field='total_return']")).to_have_text(pct(figures["total_return"]))
            expect(row.locator("[data-field='sharpe']")).to_have_text(f"{figures['sharpe']:.2f}")
            expect(row.locator("[data-field='max_drawdown']")).to_have_text(pct(figures["max_drawdown"]))
            expect(row.locator("[data-field='trades']")).to_have_text(str(figures["trades"]))
        page.wait_for_function(
            "() => document.querySelector('.equity img')?.naturalWidth > 0", timeout=TIMEOUT_MS
        )
        page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)
        # The same backtest when a sell signal goes short.
        page.locator(".sides button[data-side='long_short']").click()
        expect(backtest).to_have_attribute("data-side", "long_short")
        short = active["backtest"]["by_side"]["long_short"]["model"]
        model_row = backtest.locator("tr[data-strategy='model']")
        expect(model_row.locator("[data-field='total_return']")).to_have_text(pct(short["total_return"]))
        expect(model_row.locator("[data-field='trades']")).to_have_text(str(short["trades"]))
        # A model that is not active: its row opens its own report.
        other = page.locator(f"#models-table tbody tr[data-model='{inactive['model_id']}']")
        expect(other.locator("[data-field='total_return']")).to_have_text(
            pct(inactive["backtest"]["strategies"]["model"]["total_return"])
        )
        other.click()
        expect(report).to_have_attribute("data-model", inactive["model_id"])
        expect(other).to_have_class(re.compile(r"\bselected\b"))
        figures = inactive["backtest"]["strategies"]["model"]
        expect(model_row.locator("[data-field='total_return']")).to_have_text(pct(figures["total_return"]))
        expect(model_row.locator("[data-field='sharpe']")).to_have_text(f"{figures['sharpe']:.2f}")
        verdict = "passed" if inactive["gate"]["passed"] else inactive["gate"]["verdict"]
        expect(report).to_contain_text(verdict)
        # The live scorecard: the seeded rule signals, scored against the seeded minute bars.
        expect(page.locator("#scorecard-table tbody tr[data-source='rules']").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "models-selected.png"), full_page=True)
        browser.close()
    assert errors == [], errors
    assert (ARTIFACTS / "watchlist-15m.png").stat().st_size > 10_000
