"""The socket timeout still bounds every command on the services' Redis connection (a hung server),
with one read timer per connection instead of one per command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from stocktrack_common.redis_connection import HiredisPackingConnection

TIMEOUT = 0.3


class FakeRedis:
    """Answers the connection's handshake and health checks, and GET with a nil until `answered` of them were
    answered; then it hangs (reads, never replies). A SET stops it reading at all."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.connections = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while chunk := await reader.read(4096):
            for command in chunk.split(b"*")[1:]:  # RESP arrays; no argument here holds a '*'
                if b"SET" in command and b"CLIENT" not in command:
                    await asyncio.sleep(3600)
                if b"PING" in command:
                    writer.write(b"+PONG\r\n")
                elif b"GET" not in command:
                    writer.write(b"+OK\r\n")
                elif self.answered > 0:
                    self.answered -= 1
                    writer.write(b"$-1\r\n")
        writer.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeRedis]:
    fake = FakeRedis(answered=0)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


def client(port: int) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        f"redis://127.0.0.1:{port}/0",
        connection_class=HiredisPackingConnection,
        socket_timeout=TIMEOUT,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 0),
    )


async def timed_out(redis: aioredis.Redis) -> float:
    started = time.monotonic()
    with pytest.raises(RedisTimeoutError, match="Timeout reading from"):
        await redis.get("k")
    return time.monotonic() - started


async def test_a_hung_server_fails_the_command_after_the_socket_timeout(fake: FakeRedis) -> None:
    redis = client(fake.port)
    try:
        assert TIMEOUT <= await timed_out(redis) < TIMEOUT + 0.5
    finally:
        await redis.aclose()


async def test_the_read_timer_follows_each_command_and_the_next_command_reconnects(fake: FakeRedis) -> None:
    """Commands answered over several timeouts' worth of time are never failed by an earlier deadline."""
    fake.answered = 8
    redis = client(fake.port)
    try:
        for _ in range(8):
            assert await redis.get("k") is None
            await asyncio.sleep(TIMEOUT / 3)
        assert fake.connections == 1
        assert TIMEOUT <= await timed_out(redis) < TIMEOUT + 0.5
        fake.answered = 1
        assert await redis.get("k") is None
        assert fake.connections == 2
    finally:
        await redis.aclose()


async def test_a_server_that_stops_reading_fails_the_write_after_the_socket_timeout(fake: FakeRedis) -> None:
    redis = client(fake.port)
    try:
        await redis.ping()
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            await redis.set("k", b"x" * 64_000_000)  # far more than the socket buffers take
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 1.5
    finally:
        await redis.aclose()


async def test_a_command_with_its_own_timeout_keeps_it(fake: FakeRedis) -> None:
    """Reads given a timeout (pub/sub polling) return None when it passes, as redis-py's do."""
    redis = client(fake.port)
    try:
        connection = HiredisPackingConnection(host="127.0.0.1", port=fake.port, socket_timeout=TIMEOUT)
        await connection.connect()
        await connection.send_command("GET", "k")
        started = time.monotonic()
        assert await connection.read_response(timeout=0.1) is None
        assert time.monotonic() - started < TIMEOUT
        await connection.disconnect()
    finally:
        await redis.aclose()
