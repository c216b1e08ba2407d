"""The writer's roller: keeps bars_5m/15m/1h/1d up to date from the buckets bars_1m marked dirty.

Runs beside the consumers, on its own pooled connection, so a writer batch commits after
marking its buckets and never waits for a roll-up. Every ROLLUP_INTERVAL_MS it claims dirty
buckets until none are left (`roll_up_dirty`, each claim one transaction). Replicas share the
work: a symbol another replica is recomputing is skipped, not waited for. On stop it finishes
the claim in hand and returns; a claim cut short (cancelled, crashed) rolls back whole and is
claimed again.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool

from stocktrack_common.bar_rollups import roll_up_dirty
from stocktrack_common.health import Heartbeat
from stocktrack_common.lifecycle import sleep_or_stop

log = structlog.get_logger(__name__)

BUCKETS = Counter(
    "stocktrack_writer_rollup_buckets_total",
    "Dirty 5-minute buckets the roller claimed and recomputed (cascaded to 15m, 1h, 1d)",
)
ROUND_SECONDS = Histogram(
    "stocktrack_writer_rollup_seconds",
    "Time of one roller claim: recompute and delete of its marks",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Buckets per claim: large enough that a live round (one per symbol) is one claim, small enough
# that a backfill's marks commit in steps and a stop waits for one step at most.
CLAIM_LIMIT = 5_000
# A roller failing this long makes the writer not alive: roll-ups would trail without bound.
FAILING_BOUND_SECONDS = 120.0


async def run_rollups(
    pool: AsyncConnectionPool, stop: asyncio.Event, heartbeat: Heartbeat, interval_ms: int
) -> None:
    """Roll up dirty buckets every `interval_ms` until `stop`; a failed round is logged and retried."""
    while not stop.is_set():
        try:
            await _drain(pool, stop)
        except Exception:
            # A lost connection or a server restart: the claim rolled back; try again next round.
            log.exception("bar roll-up round failed")
            heartbeat.failing("bar roll-ups", FAILING_BOUND_SECONDS)
        else:
            heartbeat.recovered("bar roll-ups")
        await sleep_or_stop(stop, interval_ms / 1000)


async def _drain(pool: AsyncConnectionPool, stop: asyncio.Event) -> None:
    async with pool.connection() as conn:
        while True:
            with ROUND_SECONDS.time():
                done = await roll_up_dirty(conn, CLAIM_LIMIT)
            BUCKETS.inc(done.claimed)
            if done.claimed < CLAIM_LIMIT or stop.is_set():
                return
