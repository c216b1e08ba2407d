"""The async Redis client every service uses (hiredis parser, health checks, connect retry)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stocktrack_common.backoff import retry_async


def redis_from_url(url: str) -> aioredis.Redis:
    """Client whose commands retry transient connection errors (a Redis restart, a failover)."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=15,
        socket_connect_timeout=5,
        # Bounds a hung server; every blocking read (the *_BLOCK_MS settings) must stay below it.
        socket_timeout=30,
        socket_keepalive=True,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=8),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def create_redis(url: str, attempts: int = 30) -> aioredis.Redis:
    """Connect and PING, backing off while Redis is not up yet (pods start in any order)."""
    client = redis_from_url(url)

    async def ping() -> None:
        await client.ping()

    try:
        await retry_async(
            ping,
            what="redis connect",
            retry_on=(RedisConnectionError, RedisTimeoutError, OSError),
            attempts=attempts,
        )
    except BaseException:
        await client.aclose()
        raise
    return client


async def server_version(client: aioredis.Redis) -> tuple[int, ...]:
    """Redis version as a tuple, for features newer than 6.2 (e.g. XINFO GROUPS 'lag')."""
    info = await client.info("server")
    text = info.get("redis_version", "0")
    return tuple(int(p) for p in str(text).split(".") if p.isdigit())
