"""The streamer in-process on this test's stream prefix, and small SSE/WebSocket client helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvloop
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from streamer.app import create_app
from streamer.settings import StreamerSettings

StreamerFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's loop for every test here; uvloop's as well for a test that names it in
    `pytest.mark.asyncio(loop_factories=[...])`, since the streamer serves on uvloop."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "uvloop" in marker.kwargs.get("loop_factories", ()):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest_asyncio.fixture
async def make_streamer(redis_url: str, prefix: str) -> AsyncIterator[StreamerFactory]:
    clients: list[TestClient] = []  # type: ignore[type-arg]

    async def make(clock: Callable[[], float] = time.time, **overrides: Any) -> TestClient:  # type: ignore[type-arg]
        values: dict[str, Any] = {
            "redis_url": SecretStr(redis_url),
            "stream_prefix": prefix,
            "tick_shards": 2,
            "streamer_block_ms": 100,
            "streamer_heartbeat_seconds": 5,
        }
        values.update(overrides)
        client = TestClient(TestServer(create_app(StreamerSettings(**values), clock=clock)))
        await client.start_server()
        clients.append(client)
        for _ in range(100):  # the reader must have taken its start positions
            if (await client.get("/readyz")).status == 200:
                break
            await asyncio.sleep(0.05)
        return client

    yield make
    for client in clients:
        await client.close()


class SseReader:
    """Parses an SSE response into (event, id, data) records."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError
            line = raw.decode().rstrip("\n")
            if not line:
                if "event" in record or "data" in record:
                    return record
                record = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            record[field] = json.loads(value) if field == "data" else value

    async def collect(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The next `count` data events (heartbeats skipped)."""
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                record = await self.next()
                if record.get("event") != "heartbeat":
                    self.events.append(record)
        return self.events[:count]
