"""Signal handling: SIGTERM/SIGINT set an event; the work loops drain and return on their own.

Loops wait between rounds with `sleep_or_stop`, so a stop request never waits out a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def request_stop(signame: str) -> None:
        if not stop.is_set():
            log.info("shutdown requested", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig.name)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds` (nothing when <= 0), returning as soon as `stop` is set."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def run_main(main: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """Run a service's async main on uvloop (faster event loop) and return its exit code."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        return asyncio.run(main()) or 0
    return uvloop.run(main()) or 0
