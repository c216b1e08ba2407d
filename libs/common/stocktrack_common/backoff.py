"""Exponential backoff with full jitter, used wherever a service retries a dependency."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger(__name__)


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    """Full jitter (AWS architecture blog): spreads reconnect storms after an outage."""
    return random.uniform(0, min(cap, base * (2**attempt)))


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    attempts: int = 30,
    base: float = 0.2,
    cap: float = 5.0,
) -> T:
    """Run `operation` until it succeeds or `attempts` run out; the last error propagates."""
    for attempt in range(attempts):
        try:
            return await operation()
        except retry_on as exc:
            if attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt, base, cap)
            log.warning("retrying", what=what, attempt=attempt + 1, delay_s=round(delay, 3), error=str(exc))
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
