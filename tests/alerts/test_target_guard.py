"""Webhook targets on private networks are refused (SSRF), by literal address and by name."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from stocktrack_common.webhook_targets import (
    PrivateTargetError,
    connector_kwargs,
    is_public,
    literal_target_refused,
)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1:8080/hook", True),
        ("http://10.1.2.3/hook", True),
        ("http://169.254.169.254/latest/meta-data/", True),
        ("http://[::1]/hook", True),
        ("http://192.168.0.10/hook", True),
        ("https://8.8.8.8/hook", False),
        ("https://hooks.example.com/services/T/B/X", False),  # names are checked when resolved
    ],
)
def test_literal_addresses(url: str, refused: bool) -> None:
    assert (literal_target_refused(url) is not None) is refused


def test_public_check() -> None:
    assert is_public("1.1.1.1") and not is_public("172.16.0.1") and not is_public("fe80::1%eth0")


async def test_guarded_session_refuses_a_name_that_resolves_to_loopback() -> None:
    app = web.Application()
    hits: list[int] = []

    async def hook(_: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(text="ok")

    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        guarded = aiohttp.TCPConnector(**connector_kwargs(allow_private=False))
        async with aiohttp.ClientSession(connector=guarded) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await session.post(f"http://localhost:{port}/hook", data=b"{}")
            assert isinstance(info.value.os_error, PrivateTargetError)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(**connector_kwargs(True))) as session:
            async with session.post(f"http://localhost:{port}/hook", data=b"{}") as resp:
                assert resp.status == 200
        assert hits == [1]
    finally:
        await runner.cleanup()
