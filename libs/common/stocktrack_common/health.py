"""Liveness and readiness, shared by workers and HTTP services.

Liveness comes from inside the work loop: the loop beats a Heartbeat each iteration, so a
wedged loop (not just a live process) fails /healthz. Readiness pings the dependencies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]


class Heartbeat:
    """Timestamp of the last loop iteration; stale beyond `max_age` means not alive."""

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.last

    def alive(self) -> bool:
        return self.age() <= self.max_age


CHECK_TIMEOUT_SECONDS = 2.0


async def run_checks(checks: dict[str, ReadinessCheck]) -> dict[str, str]:
    """Run each readiness check; the result maps a dependency to 'ok' or its error.

    Each check is bounded: a client that retries a dead server for seconds would otherwise hold
    the probe past the kubelet's timeout, and an outage would read as a hung pod, not a 503.
    """
    results: dict[str, str] = {}
    for name, check in list(checks.items()):
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
            results[name] = "ok"
        except TimeoutError:
            results[name] = f"error: no answer within {CHECK_TIMEOUT_SECONDS:.0f}s"
        except Exception as exc:  # a failed check is a report, not a crash
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    return results


def redis_check(client: object) -> ReadinessCheck:
    async def check() -> None:
        await client.ping()  # type: ignore[attr-defined]

    return check


def postgres_check(pool: object) -> ReadinessCheck:
    async def check() -> None:
        async with pool.connection(timeout=2.0) as conn:  # type: ignore[attr-defined]
            await conn.execute("SELECT 1")

    return check
