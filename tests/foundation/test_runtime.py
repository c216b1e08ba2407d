"""The worker runtime: a drain bounded by SHUTDOWN_TIMEOUT_SECONDS, and waiting for dependencies."""

from __future__ import annotations

import asyncio
import time

import pytest

from stocktrack_common.health import Heartbeat
from stocktrack_common.runtime import run_until_drained, wait_until_reachable


async def test_a_loop_that_drains_in_time_finishes_normally() -> None:
    stop = asyncio.Event()
    drained: list[str] = []

    async def loop() -> None:
        await stop.wait()
        await asyncio.sleep(0.05)  # the batch in hand
        drained.append("acked")

    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await run_until_drained(loop(), stop, drain_timeout=5) is True
    assert drained == ["acked"]


async def test_a_loop_stuck_past_the_bound_is_cancelled() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()  # a handler that never returns
        except asyncio.CancelledError:
            cancelled.set()
            raise

    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    assert await run_until_drained(stuck(), stop, drain_timeout=0.3) is False
    assert cancelled.is_set()
    assert 0.3 <= time.monotonic() - started < 2


async def test_a_loop_error_still_propagates() -> None:
    async def broken() -> None:
        raise RuntimeError("bad configuration")

    with pytest.raises(RuntimeError, match="bad configuration"):
        await run_until_drained(broken(), asyncio.Event(), drain_timeout=1)


async def test_waiting_for_dependencies_beats_the_heartbeat_and_returns_when_they_answer() -> None:
    up_at = time.monotonic() + 0.4
    heartbeat = Heartbeat(max_age=0.3)

    async def database() -> None:
        if time.monotonic() < up_at:
            raise ConnectionRefusedError("connection refused")

    assert await wait_until_reachable({"postgres": database}, asyncio.Event(), heartbeat) is True
    assert time.monotonic() >= up_at
    assert heartbeat.alive()


async def test_stop_ends_the_wait() -> None:
    async def never() -> None:
        raise ConnectionRefusedError("connection refused")

    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    assert await wait_until_reachable({"redis": never}, stop, Heartbeat()) is False
