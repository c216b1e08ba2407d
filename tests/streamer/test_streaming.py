"""SSE and WebSocket clients see the same ordered events, resume exactly, and slow ones are dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from stocktrack_common.messages import Signal, Tick
from stocktrack_common.stream_names import shard_for, signals_stream, tick_stream
from streamer.settings import StreamerSettings
from tests.streamer.conftest import SseReader, StreamerFactory

BASE_MS = 1_714_570_200_000  # 2024-05-01 13:30:00 UTC, a minute boundary
SHARDS = 2


async def publish(redis: aioredis.Redis, prefix: str, ticks: list[Tick], signals: list[Signal] = ()) -> None:  # type: ignore[assignment]
    for tick in ticks:
        await redis.xadd(tick_stream(prefix, shard_for(tick.symbol, SHARDS)), tick.to_fields())  # type: ignore[arg-type]
    for signal in signals:
        await redis.xadd(signals_stream(prefix), signal.to_fields())  # type: ignore[arg-type]


def make_ticks(start: int, count: int, symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA")) -> list[Tick]:
    """Ticks 20 s apart per symbol, so minutes (and closed bars) roll over during the run."""
    return [
        Tick(
            symbol=symbols[i % len(symbols)],
            ts=BASE_MS + (start + i) * 20_000 // len(symbols),
            price=f"{100 + (start + i) % 17}.25",
            size=i % 9,
            source="sim",
        )
        for i in range(count)
    ]


def make_signals(count: int) -> list[Signal]:
    return [
        Signal(
            symbol="AAPL",
            ts=BASE_MS + i,
            price="101.5",
            action="buy",
            confidence=0.75,
            source="rules",
            reasons={"rsi": 28.5},
        )
        for i in range(count)
    ]


def closed_bars(ticks: list[Tick], grace_ms: int = StreamerSettings().bar_close_grace_ms) -> int:
    """Bars the streamer emits for past minutes: a minute closes on the symbol's first tick stamped
    at or after its end plus the grace; the symbol's first minute is partial and never sent."""
    minutes: dict[str, list[int]] = {}
    newest: dict[str, int] = {}
    for tick in ticks:
        seen = minutes.setdefault(tick.symbol, [])
        if not seen or seen[-1] != tick.ts // 60_000:
            seen.append(tick.ts // 60_000)
        newest[tick.symbol] = max(newest.get(tick.symbol, 0), tick.ts)
    return sum(
        sum(1 for minute in m[1:] if (minute + 1) * 60_000 + grace_ms <= newest[symbol])
        for symbol, m in minutes.items()
    )


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(e["event"], e["id"], e["data"]) for e in events]


async def ws_collect(ws: Any, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            message = await ws.receive_json()
            if message["type"] in {"tick", "signal", "bar"}:
                events.append({"event": message["type"], "id": message["id"], "data": message["data"]})
    return events


async def test_two_sse_and_one_websocket_client_see_the_same_events_and_resume_exactly(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer()
    first = SseReader(await streamer.get("/v1/stream"))
    second = SseReader(await streamer.get("/v1/stream"))
    ws = await streamer.ws_connect("/v1/ws")
    await ws.send_json({"type": "subscribe"})
    assert (await ws.receive_json())["type"] == "subscribed"

    await publish(redis_client, prefix, make_ticks(0, 60), make_signals(4))
    early = await first.collect(40)
    kept = await second.collect(25)
    last_id = kept[-1]["id"]
    second.response.close()  # disconnected mid-run
    await publish(redis_client, prefix, make_ticks(60, 60), make_signals(3))

    bars = closed_bars(make_ticks(0, 120))
    total = 120 + 7 + bars
    everything = await first.collect(total)
    assert early == everything[:40]
    assert summary(await ws_collect(ws, total)) == summary(everything)
    assert sum(e["event"] == "bar" for e in everything) == bars > 20
    ids = [e["id"] for e in everything]
    assert len(set(ids)) == len(ids)

    resumed = SseReader(await streamer.get("/v1/stream", headers={"Last-Event-ID": last_id}))
    missed = await resumed.collect(total - 25)
    assert summary(kept + missed) == summary(everything)
    with_no_more = asyncio.create_task(resumed.collect(total - 25 + 1, timeout=0.5))
    try:
        await with_no_more
        raise AssertionError("a resumed client received more than it missed")
    except TimeoutError:
        pass
    await ws.close()


async def test_resume_from_the_streams_when_the_id_is_not_in_memory(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer(streamer_ring_size=0)
    reader = SseReader(await streamer.get("/v1/stream?types=ticks,signals"))
    await publish(redis_client, prefix, make_ticks(0, 30), make_signals(2))
    before = await reader.collect(10)
    reader.response.close()
    await publish(redis_client, prefix, make_ticks(30, 20))
    resumed = SseReader(
        await streamer.get(f"/v1/stream?types=ticks,signals&last_event_id={before[-1]['id']}")
    )
    missed = await resumed.collect(52 - 10)
    seen = [(e["event"], e["data"]["symbol"], e["data"]["ts"]) for e in before + missed]
    assert len(set(seen)) == len(seen) == 52
    ticks = [(s, t) for kind, s, t in seen if kind == "tick"]
    assert sorted(ticks) == sorted((t.symbol, t.ts) for t in make_ticks(0, 50))
    # Within each symbol (one shard) the order is the publish order.
    for symbol in ("AAPL", "MSFT", "NVDA"):
        times = [t for s, t in ticks if s == symbol]
        assert times == sorted(times)


async def test_filters_bars_and_websocket_subscription_changes(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer()
    bars = SseReader(await streamer.get("/v1/stream?symbols=msft&types=bars"))
    ws = await streamer.ws_connect("/v1/ws")
    await ws.send_json({"type": "subscribe", "symbols": ["NVDA"], "types": ["ticks"]})
    assert (await ws.receive_json())["symbols"] == ["NVDA"]
    await ws.send_json({"type": "subscribe", "symbols": ["AAPL"]})
    assert (await ws.receive_json())["symbols"] == ["AAPL", "NVDA"]
    await ws.send_json({"type": "unsubscribe", "symbols": ["NVDA"]})
    assert (await ws.receive_json())["symbols"] == ["AAPL"]
    await ws.send_json({"type": "subscribe", "types": ["nonsense"]})
    assert (await ws.receive_json())["code"] == "validation_error"

    ticks = make_ticks(0, 30)
    await publish(redis_client, prefix, ticks, make_signals(1))
    got = await ws_collect(ws, 10)
    assert [e["data"]["ts"] for e in got] == [t.ts for t in ticks if t.symbol == "AAPL"]
    bar_events = await bars.collect(closed_bars([t for t in ticks if t.symbol == "MSFT"]))
    assert {e["event"] for e in bar_events} == {"bar"}
    msft = [t for t in ticks if t.symbol == "MSFT"]
    second_minute = [t for t in msft if BASE_MS + 60_000 <= t.ts < BASE_MS + 120_000]
    bar = bar_events[0]["data"]
    assert bar["ts"] == BASE_MS + 60_000 and bar["symbol"] == "MSFT"
    assert bar["open"] == format(second_minute[0].price, "f") and bar["close"] == format(
        second_minute[-1].price, "f"
    )
    assert bar["volume"] == sum(t.size for t in second_minute) and bar["trades"] == len(second_minute)
    await ws.close()


async def test_slow_client_is_dropped_with_a_final_error_and_counted(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer(streamer_client_queue=10)
    counted = 'stocktrack_streamer_clients_dropped_total{transport="sse"} '
    metrics = await (await streamer.get("/metrics")).text()
    before = float(metrics.split(counted)[1].split()[0]) if counted in metrics else 0.0
    slow = SseReader(await streamer.get("/v1/stream"))
    await asyncio.sleep(0.2)
    pipe = redis_client.pipeline(transaction=False)
    for tick in make_ticks(0, 300):
        pipe.xadd(tick_stream(prefix, shard_for(tick.symbol, SHARDS)), tick.to_fields())  # type: ignore[arg-type]
    await pipe.execute()
    async with asyncio.timeout(10):
        while True:
            record = await slow.next()
            if record.get("event") == "error":
                break
    assert record["data"]["code"] == "slow_consumer"
    metrics = await (await streamer.get("/metrics")).text()
    assert float(metrics.split(counted)[1].split()[0]) == before + 1


async def test_errors_heartbeats_and_probes(make_streamer: StreamerFactory) -> None:
    streamer = await make_streamer(streamer_heartbeat_seconds=0.2)
    response = await streamer.get("/v1/stream", headers={"Last-Event-ID": "not-an-id"})
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "bad_event_id"
    response = await streamer.get("/v1/stream?types=quotes")
    assert response.status == 422 and (await response.json())["error"]["code"] == "validation_error"
    response = await streamer.get("/v1/stream?symbols=$$")
    assert response.status == 422

    reader = SseReader(await streamer.get("/v1/stream"))
    async with asyncio.timeout(5):
        record = await reader.next()
    assert record == {"event": "heartbeat", "data": {}}  # no id yet: nothing has happened
    assert (await streamer.get("/healthz")).status == 200
    assert (await streamer.get("/readyz")).status == 200
    assert "stocktrack_streamer_clients" in await (await streamer.get("/metrics")).text()
