"""A stalled recommender (SIGSTOP) builds lag in its own group only, then drains it.

Consumer groups are independent: while the recommender is frozen its group's lag grows with
every published tick, but the writer's group keeps up, so storage is not held back by a slow
analytic consumer. After SIGCONT the recommender's own lag metric shows the backlog and then
falls back to zero. The pause lasts until 15 s of ticks (6,000) wait for the recommender: a
backlog of thousands, far beyond any in-flight batch, measured rather than hoped for.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from stocktrack_common.stream_names import RECOMMENDER_GROUP, WRITER_GROUP, tick_streams
from tests.faults.harness import (
    SHARDS,
    Ledger,
    drained,
    group_state,
    metric_sum,
    pipeline_env,
    published_ticks,
    row_count,
    scrape,
    stored_ticks,
)
from tests.support.processes import Services
from tests.support.waiting import wait_until

TICKS_PER_SECOND = 400
PAUSE_BACKLOG = 15 * TICKS_PER_SECOND  # the recommender stays frozen until this many ticks wait


def lag_metric(port: int, group: str) -> float:
    return metric_sum(scrape(port), "stocktrack_consumer_lag", group=group)


def test_paused_recommender_lags_and_drains_while_the_writer_keeps_up(
    services: Services, redis_url: str, db_url: str, prefix: str, tmp_path: Path
) -> None:
    env = pipeline_env(tmp_path, SIM_TICKS_PER_SECOND=str(TICKS_PER_SECOND))
    writer = services.start("writer", name="writer-0", **env)
    recommender = services.start("recommender", name="recommender-0", **env)
    for proc in (writer, recommender):
        proc.wait_healthy(60)
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    fetcher.wait_healthy(60)
    client = redis.Redis.from_url(redis_url)
    streams = tick_streams(prefix, SHARDS)
    assert recommender.proc is not None
    try:
        wait_until(lambda: row_count(db_url, "ticks") > TICKS_PER_SECOND, 30, "ticks to flow")
        # Steady state: both consumers have published their lag gauge at least once.
        wait_until(
            lambda: all(
                any(
                    n == "stocktrack_consumer_lag" and ("group", group) in labels
                    for n, labels in scrape(port)
                )
                for port, group in ((writer.port, WRITER_GROUP), (recommender.port, RECOMMENDER_GROUP))
            ),
            30,
            "the consumers' first lag refresh",
        )
        lag_before = lag_metric(recommender.port, RECOMMENDER_GROUP)

        os.kill(recommender.proc.pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        writer_lag_metric: list[float] = []
        writer_lag_redis: list[int] = []

        def backlog_built() -> bool:
            """Sample the writer while the recommender is frozen; done once its backlog is big enough."""
            writer_lag_metric.append(lag_metric(writer.port, WRITER_GROUP))
            state = group_state(client, streams, WRITER_GROUP)
            writer_lag_redis.append(state.lag + state.pending)
            return group_state(client, streams, RECOMMENDER_GROUP).lag >= PAUSE_BACKLOG

        try:
            wait_until(backlog_built, 120, f"{PAUSE_BACKLOG} ticks to wait for the frozen recommender", 0.5)
            frozen = group_state(client, streams, RECOMMENDER_GROUP)
        finally:
            os.kill(recommender.proc.pid, signal.SIGCONT)
        paused_seconds = time.monotonic() - paused_at

        # The first loop turn after SIGCONT refreshes the gauge (its 5 s interval has long passed).
        seen: list[float] = []

        def backlog_reported() -> bool:
            seen.append(lag_metric(recommender.port, RECOMMENDER_GROUP))
            return seen[-1] >= frozen.lag / 4

        wait_until(backlog_reported, 15, "the recommender's lag metric to show the backlog", interval=0.1)
        resumed_at = time.monotonic()
        wait_until(
            lambda: lag_metric(recommender.port, RECOMMENDER_GROUP) < TICKS_PER_SECOND,
            60,
            "the recommender's lag metric to drain",
            interval=0.5,
        )
        drained_after = time.monotonic() - resumed_at
        print(
            f"\npaused {paused_seconds:.1f}s at {TICKS_PER_SECOND} ticks/s: recommender lag metric before="
            f"{lag_before:.0f} in redis at resume={frozen.lag} metric peak={max(seen):.0f};"
            f" drained below 1s of ticks {drained_after:.1f}s after resume;"
            f" writer lag metric max during pause={max(writer_lag_metric):.0f}"
            f" writer lag+pending in redis max={max(writer_lag_redis)}"
        )
        assert frozen.lag >= PAUSE_BACKLOG
        assert max(writer_lag_redis) < TICKS_PER_SECOND * 2, "the writer fell behind with the recommender"
        assert max(writer_lag_metric) < TICKS_PER_SECOND * 2

        assert fetcher.terminate() == 0
        wait_until(
            lambda: (
                drained(client, prefix, recommender=True)
                and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)
            ),
            60,
            "the pipeline to drain",
        )
        ledger = Ledger.of(published_ticks(client, prefix), stored_ticks(db_url))
        print(ledger.line("ticks"))
        ledger.assert_exact()
    finally:
        client.close()
