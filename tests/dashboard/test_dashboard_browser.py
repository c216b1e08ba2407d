"""The dashboard in headless Chromium against a running stack (sim fetcher, writer, api, streamer).

The browser reaches the stack through a path-routing proxy, as it reaches a deployment through
the chart's ingress: the page and its live stream share one origin. Uses Debian's Chromium
through Playwright's driver; no browser is downloaded. Screenshots go to artifacts/dashboard/
(git-ignored) so a run can be inspected afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import psycopg
import pytest

from fetcher.providers.sim import SimMarket
from tests.dashboard import seed
from tests.dashboard.ingress import running_ingress
from tests.support.processes import Services

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
TIMEOUT_MS = 30_000

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
        seed.signals(
            conn,
            "AAPL",
            [
                (now - dt.timedelta(minutes=95), "buy", aapl),
                (now - dt.timedelta(minutes=40), "sell", aapl),
                (now - dt.timedelta(minutes=12), "buy", aapl),
            ],
        )
        seed.models(conn)


def test_watch_list_chart_live_updates_and_interval_switch(services: Services, db_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    seed_history(db_url)
    env = {"SYMBOLS": SYMBOLS, "TICK_SHARDS": "2"}
    writer = services.start("writer", **env)
    streamer = services.start("streamer", **env)
    api = services.start("api", DASHBOARD_STREAM_URL="", **env)
    fetcher = services.start("fetcher", SIM_TICKS_PER_SECOND="4", **env)
    for proc in (writer, streamer, api, fetcher):
        proc.wait_healthy()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with running_ingress(api.port, streamer.port) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)

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
        assert chart.locator("canvas").count() > 0
        assert (
            page.locator("#rsi-chart canvas").count() > 0 and page.locator("#macd-chart canvas").count() > 0
        )
        expect(page.locator("#chart-title")).to_have_text("AAPL")
        page.screenshot(path=str(ARTIFACTS / "watchlist-1m.png"), full_page=True)

        page.locator('.intervals button[data-interval="5m"]').click()
        expect(chart).to_have_attribute("data-interval", "5m")
        expect(chart).to_have_attribute("data-loading", "false", timeout=TIMEOUT_MS)
        bars_5m = int(chart.get_attribute("data-bars") or 0)
        assert 0 < bars_5m < bars_1m
        page.wait_for_timeout(1500)  # let a live tick or two land on the 5m chart
        page.screenshot(path=str(ARTIFACTS / "watchlist-5m.png"), full_page=True)

        page.goto(f"{base}/models")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
        expect(page.locator("#models-table tbody tr")).to_have_count(2)
        expect(page.locator("#active-model-body")).to_contain_text("20240701T000000Z-bbbbbb")
        expect(page.locator("#active-model-body")).to_contain_text("Rule engine")
        # The live scorecard: the seeded rule signals, scored against the seeded minute bars.
        expect(page.locator("#scorecard-table tbody tr[data-source='rules']").first).to_be_visible()
        page.wait_for_function(
            "() => document.querySelector('.equity img')?.naturalWidth > 0", timeout=TIMEOUT_MS
        )
        page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)
        browser.close()
    assert errors == [], errors
    assert (ARTIFACTS / "watchlist-5m.png").stat().st_size > 10_000
