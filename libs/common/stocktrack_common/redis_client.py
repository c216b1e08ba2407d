"""The async Redis client every service uses (hiredis parser, health checks, connect retry).

With `REDIS_CLUSTER=true` the client is redis-py's asyncio `RedisCluster`: it learns the slot
map from the node in `REDIS_URL`, sends each command to the node owning its key's slot and
follows MOVED/ASK redirections. Every key name carries a hash tag (stream_names.py) so that
what one command, script or transaction touches lives in one slot; readers of several streams
split their reads per slot (slot_reads.py).
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stocktrack_common.backoff import retry_async
from stocktrack_common.redis_connection import HiredisPackingConnection

# Connections per cluster node: each blocking read of a slot holds one while it waits
# (a writer reading 16 shards spread over 3 masters blocks on ~6 per node), plus the rest.
CLUSTER_CONNECTIONS_PER_NODE = 256


def _client_options() -> dict[str, Any]:
    return {
        "decode_responses": False,
        "health_check_interval": 15,
        "socket_connect_timeout": 5,
        # Bounds a hung server; every blocking read (the *_BLOCK_MS settings) must stay below it.
        "socket_timeout": 30,
        "socket_keepalive": True,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=8),
    }


def redis_from_url(url: str, *, cluster: bool = False) -> aioredis.Redis:
    """Client whose commands retry transient connection errors (a Redis restart, a failover).

    The cluster client is returned under the standalone client's type: it offers the same
    command methods, and the few places that need the difference ask `is_cluster`.
    """
    if cluster:
        return cast(
            aioredis.Redis,
            RedisCluster.from_url(url, max_connections=CLUSTER_CONNECTIONS_PER_NODE, **_client_options()),
        )
    return aioredis.Redis.from_url(
        url,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        connection_class=HiredisPackingConnection,
        **_client_options(),
    )


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def slot_of(key: str) -> int:
    """The cluster slot of a key (CRC16 of its hash tag), the same on every client."""
    return int(key_slot(key.encode()))


async def create_redis(url: str, attempts: int = 30, *, cluster: bool = False) -> aioredis.Redis:
    """Connect and PING, backing off while Redis is not up yet (pods start in any order)."""
    client = redis_from_url(url, cluster=cluster)

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


async def cluster_enabled(client: aioredis.Redis) -> bool:
    """What the server says (INFO cluster), for `stocktrack doctor` to compare with REDIS_CLUSTER."""
    info: Any = await client.info("cluster")  # the cluster client asks one node
    return str(info.get("cluster_enabled", "0")) == "1"


async def server_version(client: aioredis.Redis) -> tuple[int, ...]:
    """Redis version as a tuple, for features newer than 6.2 (e.g. XINFO GROUPS 'lag')."""
    info: Any = await client.info("server")
    text = info.get("redis_version", "0")
    return tuple(int(p) for p in str(text).split(".") if p.isdigit())
