"""Wait for a condition, never for a clock: poll a predicate until it holds or a deadline passes.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere else
(a slow suite); polling a condition is as fast as the system allows and fails with what it was
waiting for. The timeout is a ceiling for a broken build, not an expected duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_INTERVAL = 0.1


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so pytest reports it as a failure)."""


def _timed_out(what: str, timeout: float) -> WaitTimeout:
    return WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = DEFAULT_INTERVAL
) -> None:
    """Return as soon as `predicate()` is truthy; raise WaitTimeout naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Awaitable[object] | object],
    timeout: float,
    what: str,
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """`wait_until` inside an event loop: the predicate may be a coroutine function or a plain one."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout)
        await asyncio.sleep(interval)
