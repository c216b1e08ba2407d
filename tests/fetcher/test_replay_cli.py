"""`stocktrack replay FILE --speed N` publishes the recording to the tick streams and exits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import redis

from stocktrack_common.stream_names import tick_streams
from stocktrack_devtools.servers import free_port


def test_replay_command_publishes_every_tick(
    service_env: Callable[..., dict[str, str]], redis_url: str, prefix: str, tmp_path: Path
) -> None:
    recording = tmp_path / "bars.csv"
    recording.write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        "AAPL,2024-05-10T13:30:00Z,184.90,185.00,184.80,184.95,400\n"
        "MSFT,2024-05-10T13:30:00Z,410.00,410.50,409.90,410.20,800\n"
        "AAPL,2024-05-10T13:31:00Z,184.95,185.09,184.70,184.75,40\n",
        encoding="utf-8",
    )
    env = service_env(TICK_SHARDS="2", METRICS_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "stocktrack_common.cli", "replay", str(recording), "--speed", "600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries: list[dict[str, str]] = []
        for stream in tick_streams(prefix, 2):
            entries.extend(fields for _, fields in client.xrange(stream) or [] if fields)  # type: ignore[misc]
    finally:
        client.close()
    assert len(entries) == 12  # four ticks per bar
    assert {e["source"] for e in entries} == {"replay"}
    assert sum(int(e["size"]) for e in entries if e["symbol"] == "AAPL") == 440
