"""The close timer publishes in chunks: the first symbols' signals leave before the last bars close."""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis
import redis.asyncio as aioredis

import recommender.processor as processor_module
from recommender.processor import TickProcessor
from recommender.symbol_state import SymbolState
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import signals_stream
from tests.recommender.test_processor import MINUTE, PRICES, T0, processor, signals

SYMBOLS = [f"S{i}" for i in range(7)]


def ticks(minutes: range, first_seq: int) -> list[Delivery[Tick]]:
    """One tick per symbol and minute; each symbol walks PRICES from its own offset, so verdicts differ."""
    out = []
    seq = first_seq
    for minute in minutes:
        for offset, symbol in enumerate(SYMBOLS):
            ts = T0 + minute * MINUTE + 1_000
            price = Decimal(PRICES[(minute + offset) % len(PRICES)])
            out.append(
                Delivery("s", f"{ts}-{seq}", {}, Tick(symbol=symbol, ts=ts, price=price, size=10, source="t"))
            )
            seq += 1
    return out


async def run(redis_client: aioredis.Redis, prefix: str, bars: int) -> TickProcessor:
    """Each bar: the ticks of a minute, then the timer closes it (every symbol's bar at one instant)."""
    proc = processor(redis_client, prefix)
    for minute in range(bars):
        await proc.handle(ticks(range(minute, minute + 1), first_seq=1 + minute * len(SYMBOLS)))
        assert await proc.close_due(T0 + (minute + 1) * MINUTE) == len(SYMBOLS)
    return proc


async def test_chunked_close_publishes_early_and_the_same_as_one_transaction(
    redis_client: aioredis.Redis, prefix: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = await run(redis_client, f"{prefix}:whole", bars=12)
    expected = await signals(redis_client, f"{prefix}:whole")

    monkeypatch.setattr(processor_module, "CLOSE_CHUNK_SIGNALS", 2)
    # The stream's length as each bar's first and last symbol close.
    first_and_last: list[tuple[int, int]] = []
    sync = redis.Redis.from_url(redis_url)
    original = TickProcessor._on_closed

    def recording(self: TickProcessor, state: SymbolState, closed: list[Bar]) -> object:
        length = int(sync.xlen(signals_stream(f"{prefix}:chunked")))
        if state.symbol == SYMBOLS[0]:
            first_and_last.append((length, length))
        elif state.symbol == SYMBOLS[-1]:
            first_and_last[-1] = (first_and_last[-1][0], length)
        return original(self, state, closed)

    monkeypatch.setattr(TickProcessor, "_on_closed", recording)
    chunked = await run(redis_client, f"{prefix}:chunked", bars=12)
    sync.close()

    # Identical signals in identical order, and identical states (checkpoints written alike).
    assert await signals(redis_client, f"{prefix}:chunked") == expected
    assert {s: st.to_state() for s, st in chunked.states.items()} == {
        s: st.to_state() for s, st in whole.states.items()
    }
    # At some bar several symbols signalled at once, and the first of them were in the stream
    # while the last symbol's bar was still being closed.
    assert any(last > first for first, last in first_and_last)
    restarted = processor(redis_client, f"{prefix}:chunked")
    await restarted.handle(ticks(range(11, 12), first_seq=1 + 11 * len(SYMBOLS)))
    assert {s: st.to_state() for s, st in restarted.states.items()} == {
        s: st.to_state() for s, st in whole.states.items()
    }
    assert await signals(redis_client, f"{prefix}:chunked") == expected
