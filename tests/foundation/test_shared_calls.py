"""SharedCalls: concurrent calls for one key run the work once; nothing is kept after."""

from __future__ import annotations

import asyncio

import pytest

from stocktrack_common.shared_calls import SharedCalls


async def test_concurrent_calls_share_one_run_and_later_calls_run_again() -> None:
    shared: SharedCalls[str, int] = SharedCalls()
    release = asyncio.Event()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return runs

    callers = [asyncio.ensure_future(shared.run("k", work)) for _ in range(5)]
    other = asyncio.ensure_future(shared.run("other", work))
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers)
    assert results == [(1, False)] + [(1, True)] * 4  # the first caller ran it, the others joined
    assert await other == (2, False)  # another key: its own run
    assert await shared.run("k", work) == (3, False)  # a finished run is not an answer
    assert shared.running == {}


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    shared: SharedCalls[str, int] = SharedCalls()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise LookupError("gone")

    callers = [asyncio.ensure_future(shared.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    for outcome in await asyncio.gather(*callers, return_exceptions=True):
        assert isinstance(outcome, LookupError)

    async def working() -> int:
        return 7

    assert await shared.run("k", working) == (7, False)


async def test_a_caller_that_goes_away_leaves_the_run_to_the_others() -> None:
    shared: SharedCalls[str, int] = SharedCalls()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 1

    leaving = asyncio.ensure_future(shared.run("k", work))
    staying = asyncio.ensure_future(shared.run("k", work))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    release.set()
    assert await staying == (1, True)
