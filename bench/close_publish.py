"""CPU of publishing one bar close where every symbol signals: the script call against MULTI/EXEC.

    python bench/close_publish.py [--symbols 500] [--rounds 30]

The recommender's close timer publishes, at one bar end, the signals of every symbol whose verdict
changed, with those symbols' recent checkpoint records, atomically. This measures that publish for
`--symbols` signals with rule-signal-sized reasons and ~300-byte recent records, two ways in one
run, alternating rounds: the MULTI/EXEC of one XADD per signal plus the HSET (how it was done
before) and `CheckpointStore.commit` (one EVALSHA). It prints the recommender process's CPU ms
(time.process_time, so Redis's own work is not counted) and wall ms per close, medians, and the
ratio. It also times building the Signals, to show what validation costs next to publishing.

Uses REDIS_URL or a local server like `make test`; removes its keys afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import orjson

from recommender.checkpoint import CheckpointStore
from stocktrack_common.messages import Signal
from stocktrack_common.redis_client import redis_from_url
from stocktrack_common.stream_names import recommender_recent_key, signals_stream


def _reasons(i: int) -> dict[str, object]:
    """About the size and shape of a rule signal's reasons (rule_engine.Decision.reasons plus the bar)."""
    return {
        "rules": [
            {"rule": "rsi_oversold", "vote": "buy", "weight": 1.0, "detail": {"rsi": 28.123456 + i / 1000}},
            {
                "rule": "macd_cross",
                "vote": "buy",
                "weight": 1.0,
                "detail": {"macd": 0.0123, "signal": 0.0101},
            },
        ],
        "evaluated": ["rsi_oversold", "rsi_overbought", "macd_cross", "sma_trend"],
        "vote": {"buy": 2.0, "sell": 0.0, "available": 3.0},
        "indicators": {
            "rsi": 28.12,
            "macd": 0.0123,
            "macd_signal": 0.0101,
            "sma_fast": 101.2,
            "sma_slow": 100.9,
        },
        "interval": "5s",
        "bar": {
            "bucket_ms": 1_700_000_000_000,
            "interval_ms": 5_000,
            "open": "101.10",
            "high": "101.40",
            "low": "100.95",
            "close": "101.25",
            "volume": 1200 + i,
            "trades": 12,
        },
    }


def _signals(n: int) -> list[Signal]:
    return [
        Signal(
            symbol=f"S{i:03d}",
            ts=1_700_000_000_000,
            price=Decimal("101.25"),
            action="buy",
            confidence=round(0.666667, 6),
            source="rules",
            reasons=_reasons(i),
        )
        for i in range(n)
    ]


async def _median_ms(
    rounds: int, runs: dict[str, Callable[[], Awaitable[None]]]
) -> dict[str, tuple[float, float]]:
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            await run()
            cpu[name].append((time.process_time() - c0) * 1000)
            wall[name].append((time.perf_counter() - w0) * 1000)
    return {name: (statistics.median(cpu[name]), statistics.median(wall[name])) for name in runs}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    prefix = f"benchclose{uuid.uuid4().hex[:8]}"
    client = redis_from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    store = CheckpointStore(client, prefix)
    stream = signals_stream(prefix)
    signals = _signals(args.symbols)
    recent = {s.symbol: orjson.dumps({"bars": [[1, "101.25", 1200]] * 8, "last": s.symbol}) for s in signals}

    async def multi_exec() -> None:
        async with client.pipeline(transaction=True) as pipe:
            for signal in signals:
                pipe.xadd(stream, signal.to_fields())  # type: ignore[arg-type]
            pipe.hset(recommender_recent_key(prefix), mapping=recent)  # type: ignore[arg-type]
            await pipe.execute()

    async def script() -> None:
        await store.commit(stream, [s.to_fields() for s in signals], {}, recent)

    async def build_validated() -> None:
        _signals(args.symbols)

    try:
        await script()  # loads the script, warms the connection
        await multi_exec()
        figures = await _median_ms(
            args.rounds, {"multi_exec": multi_exec, "script": script, "build_signals": build_validated}
        )
    finally:
        await client.delete(stream, recommender_recent_key(prefix))
        await client.aclose()
    print(f"one close, {args.symbols} signals + recent records, median of {args.rounds} rounds:")
    for name, (cpu_ms, wall_ms) in figures.items():
        print(f"  {name:14s} cpu {cpu_ms:7.2f} ms   wall {wall_ms:7.2f} ms")
    base, new = figures["multi_exec"], figures["script"]
    print(f"script / multi_exec: cpu {new[0] / base[0]:.2f}x, wall {new[1] / base[1]:.2f}x")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
