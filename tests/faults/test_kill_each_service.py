"""kill -9 each service in turn while ticks flow, restart it, and balance the books.

One run of the whole pipeline (sim fetcher, writer, recommender, api, streamer); every few
seconds one of them is SIGKILLed mid-work and started again under the same consumer name, so
a consumer re-reads what it held unacknowledged. At the end every published tick is in `ticks`
once, every published signal in `signals` once, and nothing is pending or undelivered.
"""

from __future__ import annotations

from pathlib import Path

import redis

from stocktrack_common.stream_names import RECOMMENDER_GROUP, WRITER_GROUP, tick_streams
from tests.faults.harness import (
    SHARDS,
    Ledger,
    drained,
    first_sse_event,
    group_state,
    held_by,
    http_status,
    pipeline_env,
    published_signals,
    published_ticks,
    row_count,
    stored_signals,
    stored_ticks,
    total_pending,
)
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

TICKS_PER_SECOND = "600"
# Enough ticks that the kills land mid-work: a run whose services restart quickly keeps the
# fetcher publishing until there are this many.
MIN_TICKS = 5000
# Consumer names stay the same across a restart, as a StatefulSet pod's name does.
NAMES = {
    "writer": "writer-0",
    "recommender": "recommender-0",
    "api": "api-0",
    "streamer": "streamer-0",
    "fetcher": "fetcher-0",
}


def _prove_working(module: str, proc: ServiceProcess, client: redis.Redis, prefix: str, db_url: str) -> None:
    """The restarted service does its job again, checked through its own output."""
    if module == "writer":
        before = row_count(db_url, "ticks")
        wait_until(lambda: row_count(db_url, "ticks") > before, 30, "the restarted writer to store ticks")
    elif module == "recommender":
        streams = tick_streams(prefix, SHARDS)
        wait_until(
            lambda: group_state(client, streams, RECOMMENDER_GROUP).lag < 2000,
            30,
            "the restarted recommender to consume",
        )
    elif module == "api":
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{proc.port}/v1/quotes/AAPL/latest") == 200,
            30,
            "the restarted api to answer",
        )
    elif module == "streamer":
        assert '"symbol"' in first_sse_event(proc.port, "/v1/stream?symbols=AAPL,MSFT&types=ticks")
    elif module == "fetcher":
        published_before = len(published_ticks(client, prefix).keys)
        wait_until(
            lambda: len(published_ticks(client, prefix).keys) > published_before,
            30,
            "the restarted fetcher to publish",
        )


def stream_length(client: redis.Redis, prefix: str) -> int:
    """Entries in the tick streams: cheap to poll, unlike reading the entries themselves."""
    return sum(int(client.xlen(stream)) for stream in tick_streams(prefix, SHARDS))


def test_kill_9_each_service_in_turn_loses_and_doubles_nothing(
    services: Services, redis_url: str, db_url: str, prefix: str, tmp_path: Path
) -> None:
    env = pipeline_env(tmp_path, SIM_TICKS_PER_SECOND=TICKS_PER_SECOND)
    procs: dict[str, ServiceProcess] = {}
    for module in ("writer", "recommender", "api", "streamer"):
        procs[module] = services.start(module, name=NAMES[module], **env)
    for proc in procs.values():
        proc.wait_healthy(60)
    procs["fetcher"] = services.start("fetcher", name=NAMES["fetcher"], **env)
    procs["fetcher"].wait_healthy(60)
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: len(published_signals(client, prefix).keys) > 0, 60, "the first signals")
        for module in ("writer", "recommender", "api", "streamer", "fetcher"):
            procs[module].kill()
            print(
                f"\nkilled {module}: entries it held unacknowledged={held_by(client, prefix, NAMES[module])}"
                f" pending in all groups={total_pending(client, prefix)}"
            )
            if module != "fetcher":
                # Work piles up for the dead service before it comes back.
                piled_up = stream_length(client, prefix) + 300
                wait_until(
                    lambda piled_up=piled_up: stream_length(client, prefix) > piled_up,
                    30,
                    f"ticks to pile up while the {module} is down",
                )
            procs[module] = services.start(module, name=NAMES[module], **env)
            procs[module].wait_healthy(60)
            _prove_working(module, procs[module], client, prefix, db_url)
        wait_until(
            lambda: stream_length(client, prefix) > MIN_TICKS, 60, f"{MIN_TICKS} ticks to be published"
        )
        assert procs["fetcher"].terminate() == 0

        def settled() -> bool:
            if not drained(client, prefix):
                return False
            return row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct) and row_count(
                db_url, "signals"
            ) == len(published_signals(client, prefix).distinct)

        # Drained means every group acknowledged every entry: nothing is left to be redelivered,
        # so the books below are final.
        wait_until(settled, 90, "the pipeline to drain", interval=0.5)
        ticks_published = published_ticks(client, prefix)
        signals_published = published_signals(client, prefix)
        ticks = Ledger.of(ticks_published, stored_ticks(db_url))
        signals = Ledger.of(signals_published, stored_signals(db_url))
        writer_state = group_state(client, tick_streams(prefix, SHARDS), WRITER_GROUP)
        print(ticks.line("ticks"), f"republished-by-producer={ticks_published.repeated}")
        print(signals.line("signals"), f"republished-by-producer={signals_published.repeated}")
        print(f"pending at end={total_pending(client, prefix)} writer lag={writer_state.lag}")
        assert ticks.published > MIN_TICKS, "too few ticks flowed for the kills to land mid-work"
        assert signals.published > 0
        ticks.assert_exact()
        signals.assert_exact()
        assert total_pending(client, prefix) == 0
    finally:
        client.close()
