"""Concurrent calls for the same thing share one run of the work ("single flight").

When many clients ask for the same thing at once (a popular chart's bars, a busy API key's row
when its cache entry expires), each running its own query multiplies the database's work by
the number of waiters, though every one of them gets the same answer. Here the first call runs
the work and the others that arrive while it runs await its result. Nothing is kept once it is
done: a call that arrives after it gets a fresh run, so an answer is never older than the work
that was already running when its request arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCalls(Generic[K, V]):
    def __init__(self) -> None:
        self.running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """`work()`'s result, and whether it came from a run another call had started.

        Shielded: a caller that goes away (its client disconnected) leaves the run to the others.
        Its failure reaches every caller that shared it.
        """
        call = self.running.get(key)
        joined = call is not None
        if call is None:
            call = self.running[key] = asyncio.ensure_future(work())
            call.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(call), joined

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self.running.get(key) is done:
            del self.running[key]
        if not done.cancelled():
            done.exception()  # seen: every caller that awaited it has it already
