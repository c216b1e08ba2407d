"""Services really emit the EMF latency distributions CloudWatch needs (EMF_ENABLED=true)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import redis

from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import shard_for, tick_stream
from tests.support.processes import Services
from tests.support.waiting import wait_until


def emf_lines(output: str, metric: str) -> list[dict]:  # type: ignore[type-arg]
    lines = []
    # Only complete lines: the service may be writing the last one while the test reads.
    for line in output.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            if metric in doc:
                lines.append(doc)
    return lines


def test_api_and_writer_emit_latency_distributions(services: Services, redis_url: str, prefix: str) -> None:
    emf = {"EMF_ENABLED": "true", "EMF_FLUSH_INTERVAL_SECONDS": "0.5"}
    api = services.start("api", **emf)
    writer = services.start("writer", WRITER_BLOCK_MS="100", **emf)
    api.wait_healthy()
    writer.wait_healthy()
    client = redis.Redis.from_url(redis_url)
    tick = Tick(symbol="AAPL", ts=int(time.time() * 1000), price=Decimal("101.5"), size=10, source="sim")
    client.xadd(tick_stream(prefix, shard_for("AAPL", 4)), tick.to_fields())  # type: ignore[arg-type]
    client.close()
    for _ in range(5):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{api.port}/v1/quotes/AAPL/latest", timeout=5)

    def quote_requests() -> list[dict]:  # type: ignore[type-arg]
        lines = emf_lines(api.output(), "RequestLatency")
        return [d for d in lines if d["Route"] == "/v1/quotes/{symbol}/latest"]

    # Both flush every 0.5 s: wait for the flushes that carry the five requests and the batch.
    wait_until(
        lambda: (
            sum(sum(d["RequestLatency"]["Counts"]) for d in quote_requests()) >= 5
            and bool(emf_lines(writer.output(), "ConsumerBatchLatency"))
        ),
        30,
        "the api's and the writer's EMF lines",
    )
    assert api.terminate() == 0 and writer.terminate() == 0
    requests = quote_requests()
    assert requests, api.output()[-2000:]
    assert requests[0]["Service"] == "api"
    assert sum(sum(d["RequestLatency"]["Counts"]) for d in requests) == 5
    assert requests[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "RequestLatency"
    batches = emf_lines(writer.output(), "ConsumerBatchLatency")
    assert batches and batches[0]["Group"] == "writer" and batches[0]["Service"] == "writer", writer.output()[
        -2000:
    ]
