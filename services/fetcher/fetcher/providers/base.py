"""What every tick source looks like to the fetcher core.

Simulated, replayed, polled and streamed data all reach the publisher the same way: as an
async iterator of tick batches that ends when `stop` is set (or the source runs dry). The
core then only has to publish; scheduling, rate limits and reconnects live in the source.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from stocktrack_common.messages import Tick, TradeAmendment


class TickSource(Protocol):
    """A provider as the fetcher sees it."""

    name: str

    def batches(self, stop: asyncio.Event) -> AsyncIterator[Sequence[Tick | TradeAmendment]]:
        """Yield ordered batches of ticks until `stop` is set or the source is exhausted.

        A trade stream's batches also carry the provider's corrections and cancels of trades,
        in the order the provider sent them.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the fetcher shuts down."""
        ...
