"""Connection options shared by the operator commands (`stocktrack dead|streams|doctor`).

Operators run these from a laptop or from inside a pod; both ways the environment already carries
REDIS_URL, DATABASE_URL and STREAM_PREFIX, so the flags only override it. URLs stay SecretStr until
the moment a client is built, so they never end up in a printed namespace or a traceback.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import SecretStr

from stocktrack_common.settings import CommonSettings


@dataclass(frozen=True)
class Target:
    """Where an operator command points: the servers and the stream prefix of one deployment."""

    redis_url: SecretStr
    database_url: SecretStr
    prefix: str
    tick_shards: int


def add_target_args(parser: argparse.ArgumentParser, *, database: bool = False) -> None:
    parser.add_argument("--redis-url", help="defaults to REDIS_URL")
    if database:
        parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    parser.add_argument("--prefix", help="stream prefix; defaults to STREAM_PREFIX")


def resolve_target(args: argparse.Namespace) -> Target:
    settings = CommonSettings()
    redis_url = getattr(args, "redis_url", None)
    database_url = getattr(args, "database_url", None)
    return Target(
        redis_url=SecretStr(redis_url) if redis_url else settings.redis_url,
        database_url=SecretStr(database_url) if database_url else settings.database_url,
        prefix=getattr(args, "prefix", None) or settings.stream_prefix,
        tick_shards=settings.tick_shards,
    )


async def connect_redis(target: Target) -> aioredis.Redis:
    """A client that fails fast: an operator or a probe wants an answer now, not after minutes of retries.

    The services' client (redis_client.create_redis) retries for a long time because a pod must outlive
    a Redis restart; these commands must not, so they connect without retries and PING once.
    """
    client = aioredis.Redis.from_url(
        target.redis_url.get_secret_value(),
        socket_connect_timeout=5,
        socket_timeout=30,
        retry_on_timeout=False,
    )
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    return client
