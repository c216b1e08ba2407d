"""What the tick conditions remember per symbol, persisted in Redis so a restart resumes exactly.

A crossing compares a tick with the one before it, and RSI is a running average; both need
state that must survive a restart, or the first tick after it could neither detect a crossing
nor tell whether it had been evaluated already. The state records the newest tick evaluated:
a redelivered older tick is skipped, and the deliveries table stops a duplicate in the window
between inserting alerts and saving state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from stocktrack_common.bars import Bar
from stocktrack_common.indicators import RSI


def state_key(prefix: str) -> str:
    """Hash symbol -> JSON state, owned by the alerts worker."""
    return f"{prefix}:alerts:state"


@dataclass
class SymbolState:
    last_ts: int = 0
    last_price: Decimal | None = None
    bar: Bar | None = None  # the open minute, whose close feeds the RSI rules when it closes
    rsi: dict[int, RSI] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "last_ts": self.last_ts,
                "last_price": None if self.last_price is None else format(self.last_price, "f"),
                "bar": None if self.bar is None else self.bar.to_state(),
                "rsi": {str(p): r.to_state() for p, r in self.rsi.items()},
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> SymbolState:
        data: dict[str, Any] = orjson.loads(raw)
        price = data.get("last_price")
        last_ts = int(data.get("last_ts") or 0)
        last_price = None if price is None else Decimal(price)
        bar = data.get("bar")
        return cls(
            last_ts=last_ts,
            last_price=last_price,
            bar=Bar.from_state(bar) if bar else _legacy_bar(data.get("bucket"), last_ts, last_price),
            rsi={int(p): RSI.from_state(s) for p, s in (data.get("rsi") or {}).items()},
        )


def _legacy_bar(bucket: int | None, last_ts: int, last_price: Decimal | None) -> Bar | None:
    """The open minute of a state saved before whole bars were kept (only its bucket and close).

    Its close was the price of the newest tick evaluated, which is `last_price` at `last_ts`;
    RSI reads nothing else of the bar. Volume and trades were never kept: zero.
    """
    if bucket is None or last_price is None:
        return None
    return Bar(int(bucket), last_price, last_price, last_price, last_price, 0, 0, last_ts, last_ts)


class SymbolStateStore:
    """Read-through cache over the Redis hash; `save` writes back the symbols a batch touched."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.key = state_key(prefix)
        self.cache: dict[str, SymbolState] = {}

    async def get(self, symbol: str) -> SymbolState:
        state = self.cache.get(symbol)
        if state is None:
            raw = await self.redis.hget(self.key, symbol)
            state = SymbolState.from_json(raw) if raw else SymbolState()
            self.cache[symbol] = state
        return state

    def forget(self, symbols: set[str]) -> None:
        """Drop cached states (after a failed batch), so the next read comes from the saved hash."""
        for symbol in symbols:
            self.cache.pop(symbol, None)

    async def save(self, symbols: set[str]) -> None:
        if symbols:
            await self.redis.hset(self.key, mapping={s: self.cache[s].to_json() for s in symbols})
