"""The api's rate limit on a cluster: its script loads and runs there, and a read that rides along
with it on a single Redis (the latest quote) is served from its own slot."""

from __future__ import annotations

import redis.asyncio as aioredis

from api.access.request_limits import RateLimiter
from stocktrack_common.redis_client import slot_of
from stocktrack_common.stream_names import latest_quotes_key


async def test_rate_limit_and_quote_read_on_a_cluster(cluster_client: aioredis.Redis, prefix: str) -> None:
    quotes = latest_quotes_key(prefix)
    await cluster_client.hset(quotes, "AAPL", b"quote")
    limiter = RateLimiter(cluster_client, prefix)
    # One script call could not read both: the bucket and the quotes hash sit in different slots.
    assert slot_of(f"{prefix}:ratelimit:{{ip:203.0.113.7}}:60:0") != slot_of(quotes)
    first, value = await limiter.hit_reading("ip:203.0.113.7", 2, quotes, "AAPL")
    assert first.allowed and first.remaining == 1 and value == b"quote"
    second, missing = await limiter.hit_reading("ip:203.0.113.7", 2, quotes, "MSFT")
    assert second.allowed and second.remaining == 0 and missing is None
    refused, value = await limiter.hit_reading("ip:203.0.113.7", 2, quotes, "AAPL")
    assert not refused.allowed and refused.retry_after >= 1 and value == b"quote"
    # A script a master lacks (after a failover) is loaded again, on every master.
    limiter.script.sha = "0" * 40
    assert not (await limiter.hit("ip:203.0.113.7", 2)).allowed
    assert (await limiter.hit("ip:198.51.100.1", 2)).allowed
    await cluster_client.delete(quotes)
