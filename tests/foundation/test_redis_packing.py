"""Commands packed with hiredis: the same bytes as redis-py's Python packer, the same errors, real round trips."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from stocktrack_common.redis_client import HiredisPackingConnection, redis_from_url

COMMANDS: list[tuple[Any, ...]] = [
    (
        "XADD",
        "p:{signals}",
        "*",
        "symbol",
        "ÄBC",
        "ts",
        1_700_000_000_000,
        "confidence",
        0.1,
        "price",
        b"12.5",
    ),
    ("SET", "k", -3, "EX", 2**70),
    ("SET", b"k", memoryview(b"view"), "x", float("nan"), "y", 1e300),
    ("SET", "k", bytearray(b"array")),
    ("CONFIG GET", "maxmemory"),
    ("SET", "big", "v" * 20_000),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_hiredis_packs_the_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    assert b"".join(HiredisPackingConnection().pack_command(*args)) == b"".join(
        Connection().pack_command(*args)
    )
    assert b"".join(HiredisPackingConnection().pack_commands([args, args])) == b"".join(
        Connection().pack_commands([args, args])
    )


@pytest.mark.parametrize("bad", [None, True])
def test_values_redis_py_refuses_are_refused(bad: Any) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "k", bad)


def test_only_plain_tcp_urls_get_the_packer() -> None:
    def connection_class(url: str) -> type:
        return redis_from_url(url).connection_pool.connection_class

    assert connection_class("redis://localhost:6379/0") is HiredisPackingConnection
    assert connection_class("rediss://localhost:6379/0") is SSLConnection
    assert connection_class("unix:///tmp/redis.sock") is UnixDomainSocketConnection


async def test_a_pipelined_transaction_round_trips(redis_url: str, prefix: str) -> None:
    client = redis_from_url(redis_url)
    assert isinstance(client, aioredis.Redis)
    stream, other = f"{prefix}:s", f"{prefix}:h"
    try:
        async with client.pipeline(transaction=True) as pipe:
            for i in range(300):
                pipe.xadd(stream, {"i": i, "f": i / 7, "s": f"sÿmbol{i}", "b": b"\x00\xff"})
            pipe.hset(other, mapping={f"k{i}": "v" * i for i in range(300)})
            await pipe.execute()
        entries = await client.xrange(stream)
        assert entries is not None
        assert len(entries) == 300
        assert entries[7][1] == {
            b"i": b"7",
            b"f": repr(7 / 7).encode(),
            b"s": "sÿmbol7".encode(),
            b"b": b"\x00\xff",
        }
        assert await client.hget(other, "k299") == b"v" * 299
    finally:
        await client.aclose()
