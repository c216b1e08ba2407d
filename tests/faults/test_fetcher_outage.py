"""The fetcher rides out a Redis outage longer than its client's own retries (which used to end it).

Its own redis-server (AOF) is SIGKILLed mid-run for 10 s while the sim source keeps producing,
into a buffer deliberately smaller than the outage needs: the process stays up, /readyz answers
503 until Redis is back, the overflow is counted in stocktrack_fetcher_ticks_dropped_total, and
every tick not counted as dropped is in the streams once Redis returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.harness import (
    OwnRedis,
    http_status,
    metric_sum,
    pipeline_env,
    published_ticks,
    scrape,
)
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

MAX_TICKS = 6000
RATE = 300
BUFFER = 600
DOWN_SECONDS = 10.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


def finished_line(fetcher: ServiceProcess) -> dict[str, object]:
    for line in reversed(fetcher.output().splitlines()):
        if '"fetcher finished"' in line:
            return dict(json.loads(line))
    raise AssertionError(f"the fetcher did not finish cleanly:\n{fetcher.output()[-3000:]}")


def test_fetcher_buffers_through_a_long_redis_outage_and_counts_what_it_drops(
    services: Services, own_redis: OwnRedis, prefix: str, tmp_path: Path
) -> None:
    env = pipeline_env(
        tmp_path,
        REDIS_URL=own_redis.url,
        SIM_TICKS_PER_SECOND=str(RATE),
        SIM_MAX_TICKS=str(MAX_TICKS),
        FETCHER_BUFFER_MAX_TICKS=str(BUFFER),
        FETCHER_PUBLISH_RETRY_MAX_SECONDS="1",
    )
    fetcher = services.start("fetcher", name="fetcher-0", **env)
    fetcher.wait_healthy(60)
    ready_url = f"http://127.0.0.1:{fetcher.port}/readyz"
    client = redis.Redis.from_url(own_redis.url)
    try:
        wait_until(lambda: len(published_ticks(client, prefix).keys) > RATE, 30, "ticks before the outage")
        client.close()
        own_redis.kill()
        down_at = time.monotonic()
        wait_until(lambda: http_status(ready_url) == 503, 10, "/readyz to report it cannot publish")
        wait_until(
            lambda: metric_sum(scrape(fetcher.port), "stocktrack_fetcher_ticks_dropped_total") > 0,
            DOWN_SECONDS,
            "the full buffer to start dropping (and counting) the oldest ticks",
        )
        time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
        assert fetcher.proc is not None and fetcher.proc.poll() is None, fetcher.output()[-3000:]
        own_redis.start()
        client = redis.Redis.from_url(own_redis.url)

        assert fetcher.wait(60) == 0, fetcher.output()[-3000:]
        final = finished_line(fetcher)
        published, dropped = int(str(final["published"])), dict(final["dropped"])  # type: ignore[call-overload]
        in_streams = published_ticks(client, prefix)
        print(
            f"\nredis down {DOWN_SECONDS:.0f}s, buffer {BUFFER} ticks: fetched={MAX_TICKS}"
            f" published={published} dropped={dropped} in streams={len(in_streams.distinct)}"
            f" republished-by-producer={in_streams.repeated}"
        )
        assert set(dropped) == {"buffer_full"} and dropped["buffer_full"] > 0
        assert published + dropped["buffer_full"] == MAX_TICKS
        assert len(in_streams.distinct) == published
    finally:
        client.close()
