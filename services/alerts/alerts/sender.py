"""Sends queued alerts: POST, then delivered, retried later with backoff, or dead-lettered.

Outcomes: a 2xx is delivered. A 5xx, 408, 429 or a network error is retried after an
exponentially growing delay (honouring Retry-After), until `max_attempts` is spent; then
the row is marked dead with the last error, where the api's deliveries listing shows it.
Any other status (a 4xx: wrong URL, rejected signature) will not get better by retrying and
is dead at once. Redirects are not followed, so a target cannot bounce us somewhere else.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Literal

import aiohttp
import structlog
from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool

from alerts.outbox import ClaimedDelivery, claim_due, mark_dead, mark_delivered, mark_retry
from alerts.webhook_request import build_request
from stocktrack_common.backoff import backoff_delay
from stocktrack_common.consumer import TRANSIENT_ERRORS
from stocktrack_common.webhook_targets import PrivateTargetError, literal_target_refused

log = structlog.get_logger(__name__)

DELIVERIES = Counter("stocktrack_alerts_deliveries_total", "Delivery attempts by outcome", ["outcome"])
SEND_SECONDS = Histogram(
    "stocktrack_alerts_send_seconds",
    "Time of one webhook POST",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

RETRYABLE_STATUS = frozenset({408, 429})
Verdict = Literal["delivered", "retry", "dead"]


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    retry_after: float | None = None
    refused: bool = False  # the target may never be called (see stocktrack_common.webhook_targets)


def verdict(attempt: Attempt, attempts_made: int, max_attempts: int) -> Verdict:
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    retryable = code is None or code >= 500 or code in RETRYABLE_STATUS
    return "retry" if retryable and attempts_made < max_attempts else "dead"


def retry_delay(attempts_made: int, base: float, cap: float, retry_after: float | None) -> float:
    """Doubling delay with jitter in [50%, 100%], so retries of many alerts do not synchronise."""
    delay = min(cap, base * 2 ** max(attempts_made - 1, 0)) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class DeliverySender:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        session: aiohttp.ClientSession,
        *,
        allow_private: bool = False,
        max_attempts: int,
        retry_base: float,
        retry_cap: float,
        poll_seconds: float,
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        self.pool = pool
        self.session = session
        self.allow_private = allow_private
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.poll_seconds = poll_seconds
        self.batch = concurrency
        self.lease_seconds = lease_seconds
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                sent = await self.send_due()
                failures = 0
            except TRANSIENT_ERRORS as exc:
                delay = backoff_delay(failures, 0.2, 5.0)
                failures += 1
                log.warning(
                    "database unavailable, sender backing off", error=str(exc), delay_s=round(delay, 3)
                )
                await _wait(stop, None, delay)
                continue
            if sent < self.batch:
                await _wait(stop, self.wake, self.poll_seconds)
                self.wake.clear()

    async def send_due(self) -> int:
        """Claim and send one batch of due deliveries concurrently; returns how many were claimed."""
        async with self.pool.connection() as conn:
            items = await claim_due(conn, self.batch, self.lease_seconds)
        if items:
            await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def _deliver(self, item: ClaimedDelivery) -> None:
        if not item.enabled:
            outcome: Verdict = "dead"
            attempt = Attempt(None, "rule disabled before delivery")
        elif (refused := None if self.allow_private else literal_target_refused(item.target_url)) is not None:
            outcome, attempt = "dead", Attempt(None, refused)
        else:
            attempt = await self._post(item)
            outcome = "dead" if attempt.refused else verdict(attempt, item.attempts, self.max_attempts)
        DELIVERIES.labels(outcome).inc()
        async with self.pool.connection() as conn:
            if outcome == "delivered":
                await mark_delivered(conn, item, attempt.status_code or 0)
            elif outcome == "retry":
                delay = retry_delay(item.attempts, self.retry_base, self.retry_cap, attempt.retry_after)
                await mark_retry(conn, item, delay, attempt.status_code, attempt.error or "")
            else:
                await mark_dead(conn, item, attempt.status_code, attempt.error or "")
        log.info(
            "alert delivery",
            outcome=outcome,
            rule_id=item.rule_id,
            delivery_id=item.delivery_id,
            attempt=item.attempts,
            status_code=attempt.status_code,
            error=attempt.error,
        )

    async def _post(self, item: ClaimedDelivery) -> Attempt:
        request = build_request(item.target_type, item.payload, item.secret)
        started = time.perf_counter()
        try:
            async with self.session.post(
                item.target_url, data=request.body, headers=request.headers, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                error = None if 200 <= resp.status < 300 else f"HTTP {resp.status}: {text[:300]}"
                return Attempt(resp.status, error, _retry_after(resp.headers.get("Retry-After")))
        except aiohttp.ClientConnectorError as exc:
            # A guarded name that resolves only to private addresses will never be deliverable.
            refused = isinstance(exc.os_error, PrivateTargetError)
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], refused=refused)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500])
        finally:
            SEND_SECONDS.observe(time.perf_counter() - started)


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
