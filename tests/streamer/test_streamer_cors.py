"""The dashboard, served by the api on another port, reads the streamer's SSE from the browser."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.processes import Services


async def test_sse_response_carries_cors_headers_for_allowed_origins(services: Services) -> None:
    streamer = services.start("streamer", CORS_ORIGINS="http://127.0.0.1:8080")
    await asyncio.to_thread(streamer.wait_healthy)
    url = f"http://127.0.0.1:{streamer.port}/v1/stream?symbols=AAPL&types=ticks"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Origin": "http://127.0.0.1:8080"}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8080"
        async with session.get(url, headers={"Origin": "http://evil.example"}) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with session.options(
            url, headers={"Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "GET"}
        ) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8080"
