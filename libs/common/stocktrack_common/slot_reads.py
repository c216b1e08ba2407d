"""Reading several streams at once when they live in different Redis Cluster slots.

A multi-stream XREAD/XREADGROUP must name keys of one slot only (else CROSSSLOT). On a cluster,
a reader of several shard streams therefore keeps one blocking read in flight per slot and
takes whatever the first of them return; the reads still waiting carry over to the next call,
so an idle shard never delays a busy one and no in-flight read is cancelled (cancelling would
drop a connection and could strand a reply whose entries the server already delivered).
On a single Redis every stream shares one "slot group" and this is one ordinary read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from stocktrack_common.redis_client import slot_of

T = TypeVar("T")


def slot_groups(streams: Sequence[str], cluster: bool) -> list[list[str]]:
    """Streams grouped so each group can be read by one command (all of them on a single Redis)."""
    if not cluster:
        return [list(streams)]
    groups: dict[int, list[str]] = {}
    for stream in streams:
        groups.setdefault(slot_of(stream), []).append(stream)
    return list(groups.values())


class InFlightReads(Generic[T]):
    """One blocking read per slot group in flight; `next` returns the results of those done."""

    def __init__(self, groups: list[list[str]], start: Callable[[list[str]], Awaitable[T]]) -> None:
        self.groups = groups
        self.start = start
        self._tasks: dict[int, asyncio.Task[T]] = {}

    async def next(self) -> list[T]:
        for k, group in enumerate(self.groups):
            if k not in self._tasks:
                self._tasks[k] = asyncio.ensure_future(self.start(group))
        done, _ = await asyncio.wait(self._tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        return self._collect(done)

    async def settle(self) -> list[T]:
        """Wait for every read in flight (each ends within its BLOCK time) and return their results."""
        if not self._tasks:
            return []
        done, _ = await asyncio.wait(self._tasks.values())
        return self._collect(done)

    def _collect(self, done: set[asyncio.Task[T]]) -> list[T]:
        results: list[T] = []
        error: BaseException | None = None
        for k, task in list(self._tasks.items()):
            if task not in done:
                continue
            del self._tasks[k]
            exc = task.exception()
            if exc is None:
                results.append(task.result())
            elif error is None:
                error = exc
        # A failed group is read again next time; its error surfaces only when nothing else came,
        # so one unreachable node never holds back entries other nodes already delivered.
        if error is not None and not results:
            raise error
        return results

    def cancel(self) -> None:
        """Drop reads in flight (shutdown of a broadcast reader, which acknowledges nothing)."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
