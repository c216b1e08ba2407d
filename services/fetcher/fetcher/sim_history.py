"""`stocktrack seed-sim-history`: recent 1-minute bars for the simulated market.

Indicators need history (RSI 15 bars, MACD 34, SMA200 200) before the first signal, so a
demo on a fresh database would show nothing for hours. This writes a plausible past for
each simulated symbol that ends exactly at the price the simulator starts from, so the live
ticks continue the chart without a jump. Symbols that already have recent bars are left
alone, and rows are inserted with ON CONFLICT DO NOTHING: running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time

import numpy as np
import psycopg
from tqdm import tqdm

from fetcher.providers.sim import SECONDS_PER_YEAR, SimMarket
from fetcher.settings import FetcherSettings

INSERT_BARS = """
INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
                     %s::bigint[], %s::integer[], %s::timestamptz[], %s::timestamptz[])
ON CONFLICT (symbol, bucket) DO NOTHING
"""


def simulated_closes(
    start_price: float, drift: float, volatility: float, scale: float, minutes: int, rng: np.random.Generator
) -> np.ndarray:
    """A GBM path of `minutes` closes whose last value is `start_price`."""
    dt_years = 60.0 * scale / SECONDS_PER_YEAR
    steps = (drift - 0.5 * volatility**2) * dt_years + volatility * math.sqrt(dt_years) * rng.standard_normal(
        minutes
    )
    path = np.exp(np.cumsum(steps))
    return np.asarray(start_price * path / path[-1])


def seed(url: str, settings: FetcherSettings, minutes: int, now: dt.datetime | None = None) -> int:
    market = SimMarket(
        settings.symbols, seed=settings.sim_seed, volatility_scale=settings.sim_volatility_scale
    )
    rng = np.random.default_rng(settings.sim_seed + 1)
    end = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    buckets = [end - dt.timedelta(minutes=minutes - i) for i in range(minutes)]
    written = 0
    with psycopg.connect(url) as conn:
        for symbol, state in tqdm(market.states.items(), desc="seeding bars", unit="symbol"):
            recent = conn.execute(
                "SELECT count(*) FROM bars_1m WHERE symbol = %s AND bucket >= %s", (symbol, buckets[0])
            ).fetchone()
            if recent and recent[0] > 0:
                continue
            closes = simulated_closes(
                state.price, state.drift, state.volatility, settings.sim_volatility_scale, minutes, rng
            )
            opens = np.concatenate([[closes[0]], closes[:-1]])
            spread = np.abs(rng.normal(0, 0.0008, minutes)) * closes
            highs = np.maximum(opens, closes) + spread
            lows = np.maximum(0.01, np.minimum(opens, closes) - spread)
            trades = rng.integers(20, 120, minutes)
            volumes = trades * rng.integers(80, 300, minutes)
            cur = conn.execute(
                INSERT_BARS,
                (
                    [symbol] * minutes,
                    buckets,
                    [f"{v:.4f}" for v in opens],
                    [f"{v:.4f}" for v in highs],
                    [f"{v:.4f}" for v in lows],
                    [f"{v:.4f}" for v in closes],
                    volumes.tolist(),
                    trades.tolist(),
                    buckets,
                    [b + dt.timedelta(seconds=59) for b in buckets],
                ),
            )
            written += max(cur.rowcount, 0)
        conn.commit()
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stocktrack seed-sim-history", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=300, help="bars per symbol (default 300)")
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    args = parser.parse_args(argv)
    settings = FetcherSettings()
    started = time.monotonic()
    written = seed(args.database_url or settings.database_url.get_secret_value(), settings, args.minutes)
    print(f"seeded {written} simulated 1-minute bars in {time.monotonic() - started:.1f}s")
    return 0
