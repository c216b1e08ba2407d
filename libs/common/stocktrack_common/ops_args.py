"""Connection options shared by the operator commands (`stocktrack dead|streams|doctor`).

Operators run these from a laptop or from inside a pod; both ways the environment already carries
REDIS_URL, DATABASE_URL and STREAM_PREFIX, so the flags only override it. URLs stay SecretStr until
the moment a client is built, so they never end up in a printed namespace or a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.asyncio.cluster import RedisCluster

from stocktrack_common.cli import UsageError
from stocktrack_common.settings import PREFIX_PATTERN, CommonSettings, check_database_url, check_redis_url


@dataclass(frozen=True)
class Target:
    """Where an operator command points: the servers and the stream prefix of one deployment."""

    redis_url: SecretStr
    database_url: SecretStr
    prefix: str
    tick_shards: int
    cluster: bool = False
    defaults: tuple[str, ...] = field(default=())
    """Settings that came from neither a flag nor the environment (built-in local defaults)."""


def add_target_args(parser: argparse.ArgumentParser, *, database: bool = False) -> None:
    parser.add_argument("--redis-url", help="defaults to REDIS_URL")
    if database:
        parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    parser.add_argument("--prefix", help="stream prefix; defaults to STREAM_PREFIX")


def _checked(flag: str, value: str, check: Callable[[str], str]) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def resolve_target(args: argparse.Namespace) -> Target:
    settings = CommonSettings()
    redis_url = getattr(args, "redis_url", None)
    database_url = getattr(args, "database_url", None)
    prefix = getattr(args, "prefix", None)
    if redis_url:
        _checked("--redis-url", redis_url, check_redis_url)
    if database_url:
        _checked("--database-url", database_url, check_database_url)
    if prefix is not None and not re.fullmatch(PREFIX_PATTERN, prefix):
        raise UsageError(f"--prefix: {prefix!r} must match {PREFIX_PATTERN}")
    defaults = []
    if not redis_url and not _in_environment("REDIS_URL"):
        defaults.append("REDIS_URL")
    if hasattr(args, "database_url") and not database_url and not _in_environment("DATABASE_URL"):
        defaults.append("DATABASE_URL")
    return Target(
        redis_url=SecretStr(redis_url) if redis_url else settings.redis_url,
        database_url=SecretStr(database_url) if database_url else settings.database_url,
        prefix=prefix or settings.stream_prefix,
        tick_shards=settings.tick_shards,
        cluster=settings.redis_cluster,
        defaults=tuple(defaults),
    )


def _in_environment(name: str) -> bool:
    return any(key.upper() == name for key in os.environ)


def warn_if_defaults(prog: str, target: Target) -> None:
    """Say loudly on stderr when a command talks to the built-in local servers: that is rarely what an
    operator of a deployment meant, and silence would make a wrong answer look like the right one."""
    for name in target.defaults:
        print(
            f"{prog}: WARNING: {name} is not set; using the local default "
            f"({'redis://127.0.0.1:6379/0' if name == 'REDIS_URL' else 'postgresql://postgres@127.0.0.1:5432/stocktrack'})",
            file=sys.stderr,
        )


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def non_negative_seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0 (nan and inf are refused, not read as 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds, 0 or more")
    return value


async def connect_redis(target: Target) -> aioredis.Redis:
    """A client that fails fast: an operator or a probe wants an answer now, not after minutes of retries.

    The services' client (redis_client.redis_from_url) retries for a long time because a pod must outlive
    a Redis restart; these commands must not, so they connect without retries and PING once.
    """
    url = target.redis_url.get_secret_value()
    client: aioredis.Redis
    if target.cluster:
        client = cast(aioredis.Redis, RedisCluster.from_url(url, socket_connect_timeout=5, socket_timeout=30))
    else:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=30, retry_on_timeout=False
        )
    try:
        await client.ping()
    except BaseException:
        await client.aclose()
        raise
    return client
