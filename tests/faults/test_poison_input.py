"""Malformed entries at 1% on every stream: each is dead-lettered with its reason, the rest flows.

Every tick shard and the signals stream get one malformed entry per hundred, of many kinds
(bad symbol, SQL in a field, missing or extra fields, non-finite price, wrong schema version,
bytes that are not UTF-8), and of the plausible-but-unstorable kinds: a size beyond bigint or
beyond the size bound, a price with too many digits before or after the point, a reason text
jsonb refuses. Each consumer group (writer, recommender, alerts) dead-letters each of them
exactly once at decode time with a reason, no good entry fails even once, every good entry is
stored once, and the services' own counters agree.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import orjson
import redis

from stocktrack_common.messages import Signal, Tick
from stocktrack_common.stream_names import (
    ALERTS_GROUP,
    RECOMMENDER_GROUP,
    WRITER_GROUP,
    shard_for,
    signals_stream,
    tick_stream,
)
from tests.faults.harness import (
    SHARDS,
    SYMBOLS,
    Ledger,
    dead_letters,
    drained,
    metric_sum,
    pipeline_env,
    published_signals,
    published_ticks,
    row_count,
    scrape,
    stored_signals,
    stored_ticks,
)
from tests.support.processes import Services
from tests.support.waiting import wait_until

GOOD_TICKS = 6000
GOOD_SIGNALS = 900
EVERY = 100  # one malformed entry per hundred: 1%

_TICK = {"v": "1", "symbol": "AAPL", "ts": "1700000000000", "price": "101.25", "size": "100", "source": "sim"}
BAD_TICKS: list[dict[str, str | bytes]] = [
    {**_TICK, "symbol": "AAPL'; DROP TABLE ticks;--"},
    {k: v for k, v in _TICK.items() if k != "price"},
    {**_TICK, "price": "-5"},
    {**_TICK, "price": "NaN"},
    {**_TICK, "ts": "yesterday"},
    {**_TICK, "v": "2"},
    {**_TICK, "symbol": b"\xff\xfeAAPL"},
    {**_TICK, "evil": "1"},
    {**_TICK, "size": "-1"},
    {"junk": ""},
    {**_TICK, "size": "9223372036854775808"},
    {**_TICK, "size": "1000000000000"},
    {**_TICK, "price": "1234567890123456.5"},
    {**_TICK, "price": "101.0000000000001"},
    {**_TICK, "price": "1E+200000"},
]
_SIGNAL = Signal(
    symbol="MSFT", ts=1_700_000_000_000, price=Decimal("10"), action="buy", confidence=0.5, source="rules"
).to_fields()
BAD_SIGNALS: list[dict[str, str | bytes]] = [
    {**_SIGNAL, "action": "moon"},
    {**_SIGNAL, "confidence": "2"},
    {**_SIGNAL, "reasons": "{not json"},
    {**_SIGNAL, "source": "rules'); DELETE FROM signals;--"},
    {**_SIGNAL, "reasons": b"\x80\x81"},
    {k: v for k, v in _SIGNAL.items() if k != "v"},
    {**_SIGNAL, "reasons": '{"why": "a\\u0000b"}'},
    {**_SIGNAL, "price": "10.0000000000001"},
]


def inject(client: redis.Redis, prefix: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Publish good and malformed entries interleaved; returns the malformed (stream, id)s per kind."""
    symbols = SYMBOLS.split(",")
    base = int(time.time() * 1000) - 600_000
    pipe = client.pipeline(transaction=False)
    sent: list[tuple[str, bool]] = []  # (stream, malformed) per XADD, in pipeline order
    good_per_shard = dict.fromkeys(range(SHARDS), 0)
    for i in range(GOOD_TICKS):
        symbol = symbols[i % len(symbols)]
        shard = shard_for(symbol, SHARDS)
        stream = tick_stream(prefix, shard)
        tick = Tick(
            symbol=symbol,
            ts=base + i * 10,
            price=Decimal(f"{100 + (i % 37) / 10:.2f}"),
            size=i % 300,
            source="sim",
        )
        pipe.xadd(stream, tick.to_fields())  # type: ignore[arg-type]
        sent.append((stream, False))
        good_per_shard[shard] += 1
        if good_per_shard[shard] % (EVERY - 1) == 0:
            bad = sum(1 for _, malformed in sent if malformed)
            pipe.xadd(stream, BAD_TICKS[bad % len(BAD_TICKS)])  # type: ignore[arg-type]
            sent.append((stream, True))
    signal_stream = signals_stream(prefix)
    for i in range(GOOD_SIGNALS):
        signal = Signal(
            symbol=symbols[i % len(symbols)],
            ts=base + i * 1000,
            price=Decimal("50.5"),
            action=("buy", "sell", "hold")[i % 3],
            confidence=0.25,
            source="model:poison-test",
            reasons={"i": i},
        )
        pipe.xadd(signal_stream, signal.to_fields())  # type: ignore[arg-type]
        sent.append((signal_stream, False))
        if (i + 1) % (EVERY - 1) == 0:
            pipe.xadd(signal_stream, BAD_SIGNALS[(i + 1) // (EVERY - 1) % len(BAD_SIGNALS)])  # type: ignore[arg-type]
            sent.append((signal_stream, True))
    ids = pipe.execute()
    bad_ticks: set[tuple[str, str]] = set()
    bad_signals: set[tuple[str, str]] = set()
    for (stream, malformed), entry_id in zip(sent, ids, strict=True):
        if malformed:
            (bad_signals if stream == signal_stream else bad_ticks).add((stream, entry_id.decode()))
    return bad_ticks, bad_signals


def test_malformed_entries_are_dead_lettered_once_per_group_and_good_ones_flow(
    services: Services, redis_url: str, db_url: str, prefix: str, tmp_path: Path
) -> None:
    env = pipeline_env(tmp_path)
    writer = services.start("writer", name="writer-0", **env)
    recommender = services.start("recommender", name="recommender-0", **env)
    alerts = services.start("alerts", name="alerts-0", **env)
    streamer = services.start("streamer", name="streamer-0", **env)
    for proc in (writer, recommender, alerts, streamer):
        proc.wait_healthy(60)
    client = redis.Redis.from_url(redis_url)
    try:
        bad_ticks, bad_signals = inject(client, prefix)
        wait_until(
            lambda: (
                drained(client, prefix, alerts=True)
                and row_count(db_url, "ticks") == len(published_ticks(client, prefix).distinct)
                and row_count(db_url, "signals") == len(published_signals(client, prefix).distinct)
            ),
            60,
            "every good entry to be stored and every group to drain",
            interval=0.5,
        )
        ticks_in, signals_in = published_ticks(client, prefix), published_signals(client, prefix)
        dead = dead_letters(client, prefix)
        by_group: dict[str, set[tuple[str, str]]] = {
            WRITER_GROUP: set(),
            RECOMMENDER_GROUP: set(),
            ALERTS_GROUP: set(),
        }
        for record in dead:
            by_group[record["group"]].add((record["stream"], record["id"]))
            assert record["error"].startswith("invalid message: "), record
            assert isinstance(orjson.loads(record["fields"]), dict)
        dead_from_signals = sum(1 for r in dead if r["stream"] == signals_stream(prefix))
        ticks = Ledger.of(ticks_in, stored_ticks(db_url), len(dead) - dead_from_signals)
        signals = Ledger.of(signals_in, stored_signals(db_url), dead_from_signals)
        print(
            f"\ninjected malformed: ticks={len(bad_ticks)} signals={len(bad_signals)};"
            f" dead-letter records={len(dead)} (writer={len(by_group[WRITER_GROUP])},"
            f" recommender={len(by_group[RECOMMENDER_GROUP])}, alerts={len(by_group[ALERTS_GROUP])})"
        )
        print(ticks.line("ticks"))
        print(signals.line("signals"))
        assert ticks_in.malformed == len(bad_ticks) and signals_in.malformed == len(bad_signals)
        for good, bad in ((GOOD_TICKS, len(bad_ticks)), (GOOD_SIGNALS, len(bad_signals))):
            assert round(EVERY * bad / (good + bad)) == 1, "not 1% malformed"
        assert len(dead) == 3 * len(bad_ticks) + 2 * len(bad_signals), "an entry was dead-lettered twice"
        assert by_group[WRITER_GROUP] == bad_ticks | bad_signals
        assert by_group[RECOMMENDER_GROUP] == bad_ticks
        assert by_group[ALERTS_GROUP] == bad_ticks | bad_signals
        ticks.assert_exact()
        signals.assert_exact()

        writer_m, recommender_m, alerts_m, streamer_m = (
            scrape(writer.port),
            scrape(recommender.port),
            scrape(alerts.port),
            scrape(streamer.port),
        )
        counted = {
            "writer dead_lettered": metric_sum(
                writer_m, "stocktrack_consumer_messages_total", group=WRITER_GROUP, outcome="dead_lettered"
            ),
            "writer acked": metric_sum(
                writer_m, "stocktrack_consumer_messages_total", group=WRITER_GROUP, outcome="acked"
            ),
            "recommender dead_lettered": metric_sum(
                recommender_m,
                "stocktrack_consumer_messages_total",
                group=RECOMMENDER_GROUP,
                outcome="dead_lettered",
            ),
            "recommender acked": metric_sum(
                recommender_m, "stocktrack_consumer_messages_total", group=RECOMMENDER_GROUP, outcome="acked"
            ),
            "alerts dead_lettered": metric_sum(
                alerts_m, "stocktrack_consumer_messages_total", group=ALERTS_GROUP, outcome="dead_lettered"
            ),
            "alerts acked": metric_sum(
                alerts_m, "stocktrack_consumer_messages_total", group=ALERTS_GROUP, outcome="acked"
            ),
            # A good entry that failed even once in any group (a batch split, a poison neighbour).
            "retried": sum(
                metric_sum(m, "stocktrack_consumer_messages_total", outcome="retried")
                for m in (writer_m, recommender_m, alerts_m)
            ),
            "streamer malformed": metric_sum(streamer_m, "stocktrack_streamer_malformed_entries_total"),
        }
        print("counters:", {k: int(v) for k, v in counted.items()})
        assert counted == {
            "writer dead_lettered": len(bad_ticks) + len(bad_signals),
            "writer acked": len(ticks_in.keys) + len(signals_in.keys),
            "recommender dead_lettered": len(bad_ticks),
            "recommender acked": len(ticks_in.keys),
            "alerts dead_lettered": len(bad_ticks) + len(bad_signals),
            "alerts acked": len(ticks_in.keys) + len(signals_in.keys),
            "retried": 0,
            "streamer malformed": len(bad_ticks) + len(bad_signals),
        }
        for proc in (writer, recommender, alerts, streamer):
            assert proc.proc is not None and proc.proc.poll() is None, proc.output()[-3000:]
    finally:
        client.close()
