"""Live bars close on the timer: a quiet symbol's minute is sent at its end plus the grace.

The streamer's clock runs at real speed, shifted so that a minute ends two seconds into the
test (create_app takes the clock for this). Inside the grace a tick of the ended minute still
amends the bar; after the bar is sent, such a tick is delivered as a tick, is in no bar, and is
counted as late.
"""

from __future__ import annotations

import contextlib
import time

import redis.asyncio as aioredis

from stocktrack_common.bars import MINUTE_MS, bucket_of
from stocktrack_common.messages import Tick
from tests.streamer.conftest import SseReader, StreamerFactory
from tests.streamer.test_streaming import publish
from tests.support.waiting import wait_until_async

GRACE_MS = 800
LATE = "\nstocktrack_streamer_late_ticks_total "


def tick(ts: int, price: str, size: int) -> Tick:
    return Tick(symbol="QUIET", ts=ts, price=price, size=size, source="sim")


async def late_ticks(streamer: object) -> float:
    text = await (await streamer.get("/metrics")).text()  # type: ignore[attr-defined]
    return float(text.split(LATE)[1].split()[0])


async def test_a_quiet_symbols_bar_is_sent_at_its_end_plus_grace_then_late_ticks_are_counted(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    now_ms = time.time() * 1000
    end = bucket_of(int(now_ms)) + 2 * MINUTE_MS
    shift = (end - 2000 - now_ms) / 1000

    def clock() -> float:
        return time.time() + shift

    start = end - MINUTE_MS
    streamer = await make_streamer(clock=clock, bar_close_grace_ms=GRACE_MS)
    reader = SseReader(await streamer.get("/v1/stream?symbols=QUIET&types=ticks,bars"))
    # The symbol's first minute is partial (ticks before the start may belong to it): never sent.
    await publish(
        redis_client,
        prefix,
        [tick(start - 1000, "10.5", 1), tick(start + 1000, "11.5", 2), tick(end - 1500, "12.5", 3)],
    )
    assert [e["event"] for e in await reader.collect(3)] == ["tick"] * 3

    # The minute has ended but its grace has not: a tick of it amends the bar still to be sent.
    await wait_until_async(lambda: clock() * 1000 >= end + 100, 10, "the minute's end")
    assert clock() * 1000 < end + GRACE_MS
    await publish(redis_client, prefix, [tick(end - 10, "9.5", 4)])
    events = await reader.collect(5)
    sent_ms = clock() * 1000
    assert events[3]["event"] == "tick"
    assert events[4]["event"] == "bar"
    assert events[4]["data"] == {
        "symbol": "QUIET",
        "ts": start,
        "open": "11.5",
        "high": "12.5",
        "low": "9.5",
        "close": "9.5",
        "volume": 9,
        "trades": 3,
    }
    # No later tick closed it: the timer did, at the minute's end plus the grace.
    assert end + GRACE_MS <= sent_ms < end + GRACE_MS + 1000, sent_ms - end

    # After the grace, a tick of the sent minute still streams as a tick, changes no bar, and is counted.
    before = await late_ticks(streamer)
    await publish(redis_client, prefix, [tick(end - 5, "8.5", 1)])
    late = (await reader.collect(6))[5]
    assert (late["event"], late["data"]["ts"]) == ("tick", end - 5)
    # Counted while the tick was read, before it reached any client.
    assert await late_ticks(streamer) == before + 1
    with contextlib.suppress(TimeoutError):
        await reader.collect(7, timeout=0.5)
    assert len(reader.events) == 6, reader.events[6:]
