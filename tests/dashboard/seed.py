"""History the browser test needs before it starts: minute bars, a previous close, signals, a model.

The sim fetcher only runs for seconds during a test, far too short for SMA200 or a previous
session; so the test writes that history directly, the way the writer and a backfill would.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import struct
import zlib
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def minute_bars(
    conn: psycopg.Connection, symbol: str, minutes: int, end: dt.datetime, last_close: float
) -> None:
    """Insert `minutes` 1-minute bars ending before `end`, the last one closing at `last_close`."""
    first = end.replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes)
    path = [1 + 0.04 * math.sin(i / 37) + 0.015 * math.sin(i / 5.3) for i in range(minutes + 1)]
    closes = [last_close * v / path[-1] for v in path]
    rows = []
    for i in range(minutes):
        bucket = first + dt.timedelta(minutes=i)
        open_, close = closes[i], closes[i + 1]
        high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
        rows.append(
            (
                symbol,
                bucket,
                Decimal(f"{open_:.4f}"),
                Decimal(f"{high:.4f}"),
                Decimal(f"{low:.4f}"),
                Decimal(f"{close:.4f}"),
                1000 + i,
                10,
                bucket,
                bucket + dt.timedelta(seconds=59),
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            rows,
        )


def previous_close(conn: psycopg.Connection, symbol: str, day: dt.date, close: float) -> None:
    conn.execute(
        "INSERT INTO daily_bars (symbol, day, open, high, low, close, adj_close, volume, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, 1000000, 'test')",
        (symbol, day, close, close, close, close, close),
    )


def rule_reasons(action: str, interval: str | None) -> dict[str, Any]:
    """Reasons in the shape the recommender's rule engine records (recommender/rules.py)."""
    detail = "RSI 27.4 below 30" if action == "buy" else "MACD crossed below its signal line"
    reasons: dict[str, Any] = {
        "rules": [{"rule": f"{action}_rule", "vote": action, "weight": 1.0, "detail": detail}],
        "vote": {"buy": 1.0 if action == "buy" else 0.0, "sell": 1.0 if action == "sell" else 0.0},
    }
    if interval is not None:
        reasons["interval"] = interval
    return reasons


def signals(
    conn: psycopg.Connection,
    symbol: str,
    points: list[tuple[dt.datetime, str, float]],
    interval: str | None = None,
    confidence: float = 0.8,
) -> None:
    """Rule-engine signals; `interval` None stores none, as signals from before it was recorded."""
    for ts, action, price in points:
        conn.execute(
            "INSERT INTO signals (symbol, ts, source, action, confidence, price, reasons)"
            " VALUES (%s, %s, 'rules', %s, %s, %s, %s)",
            (symbol, ts, action, confidence, Decimal(f"{price:.4f}"), Jsonb(rule_reasons(action, interval))),
        )


def tiny_png(width: int = 360, height: int = 140) -> bytes:
    """A valid PNG (a diagonal line), enough to prove the page shows a stored picture."""
    raw = b"".join(
        b"\x00"
        + b"".join(
            b"\x20\x60\xc0" if abs(x - y * width // height) < 2 else b"\xff\xff\xff" for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def models(conn: psycopg.Connection) -> None:
    def metrics(model: float, with_chart: bool) -> dict[str, Any]:
        def cls(acc: float) -> dict[str, float]:
            return {"n": 500, "accuracy": acc + 0.05, "balanced_accuracy": acc, "macro_f1": acc - 0.03}

        out: dict[str, Any] = {
            "evaluation": {
                "n_out_of_sample": 500,
                "metrics": {"model": cls(model), "majority": cls(0.33), "rules": cls(0.38)},
            },
            "backtest": {
                "execution": "next_open",
                "side": "long_flat",
                "cost_bps": 5.0,
                "slippage_bps": 2.0,
                "from": "2023-01-02",
                "to": "2024-06-28",
                "strategies": {
                    "model": {"total_return": 0.18, "sharpe": 1.1, "max_drawdown": -0.09, "trades": 41},
                    "majority": {"total_return": 0.0, "sharpe": 0.0, "max_drawdown": 0.0, "trades": 0},
                    "rules": {"total_return": 0.07, "sharpe": 0.5, "max_drawdown": -0.12, "trades": 77},
                    "buy_and_hold": {"total_return": 0.12, "sharpe": 0.8, "max_drawdown": -0.15, "trades": 1},
                },
            },
        }
        if with_chart:
            out["equity_chart_png"] = base64.b64encode(tiny_png()).decode()
        return out

    for model_id, acc, active in (
        ("20240101T000000Z-aaaaaa", 0.36, False),
        ("20240701T000000Z-bbbbbb", 0.44, True),
    ):
        conn.execute(
            "INSERT INTO models (id, algorithm, train_from, train_to, metrics, artifact, active)"
            " VALUES (%s, 'logistic_regression', '2020-01-02', '2024-06-28', %s, '\\x00', %s)",
            (model_id, Jsonb(metrics(acc, active)), active),
        )
