"""The api and the streamer listen before Redis and PostgreSQL answer, and say so on /readyz.

Nothing listens on the ports these settings point at: the servers must still start (a pod that
cannot even answer its probes is restarted in a loop), report live on /healthz and not ready
(503, naming what is missing) on /readyz, instead of blocking or exiting at startup.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from api.app import create_app as create_api
from api.settings import ApiSettings
from stocktrack_common.settings import PoolSettings
from stocktrack_devtools.servers import free_port
from streamer.app import create_app as create_streamer
from streamer.settings import StreamerSettings


async def test_api_starts_without_its_servers_and_is_not_ready() -> None:
    settings = ApiSettings(
        redis_url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"),
        database_url=SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/stocktrack"),
        db=PoolSettings(pool_min=1, pool_max=1),
    )
    async with TestClient(TestServer(create_api(settings))) as client:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503
        assert body["checks"]["redis"] != "ok" and body["checks"]["postgres"] != "ok"


async def test_streamer_starts_without_redis_and_is_not_ready() -> None:
    settings = StreamerSettings(redis_url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"), tick_shards=1)
    async with TestClient(TestServer(create_streamer(settings))) as client:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503
        assert body["checks"]["redis"] != "ok" and body["checks"]["reader"] != "ok"
