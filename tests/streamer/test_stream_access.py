"""The streamer honours the api's keys and scopes; WebSocket subscribe semantics as documented."""

from __future__ import annotations

import psycopg
import redis.asyncio as aioredis
from aiohttp import WSServerHandshakeError
from pydantic import SecretStr

from stocktrack_common.api_keys import create_key, revoke_key
from tests.streamer.conftest import SseReader, StreamerFactory
from tests.streamer.test_streaming import make_ticks, publish

PEPPER = "streamer-access-tests-pepper"


async def new_key(db_url: str, scopes: list[str]) -> tuple[str, str]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row, key = await create_key(conn, "streamer-test", scopes, PEPPER)
    return row.id, key


async def test_keys_are_required_when_reads_require_them(
    make_streamer: StreamerFactory, db_url: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer(
        database_url=SecretStr(db_url), api_key_pepper=SecretStr(PEPPER), api_read_requires_key=True
    )
    _, key = await new_key(db_url, ["read"])
    revoked_id, revoked = await new_key(db_url, ["read"])
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await revoke_key(conn, revoked_id)

    anonymous = await streamer.get("/v1/stream")
    assert anonymous.status == 401 and (await anonymous.json())["error"]["code"] == "unauthorized"
    for bad in ("stk_000000000000_" + "x" * 43, revoked, "not-a-key"):
        refused = await streamer.get("/v1/stream", headers={"X-API-Key": bad})
        assert refused.status == 401, bad
    try:
        await streamer.ws_connect("/v1/ws")
        raise AssertionError("an anonymous WebSocket was accepted")
    except WSServerHandshakeError as exc:
        assert exc.status == 401

    by_header = SseReader(await streamer.get("/v1/stream", headers={"Authorization": f"Bearer {key}"}))
    by_query = SseReader(await streamer.get("/v1/stream", params={"api_key": key}))
    ws = await streamer.ws_connect("/v1/ws", params={"api_key": key})
    await ws.send_json({"type": "subscribe"})
    assert (await ws.receive_json())["type"] == "subscribed"
    await publish(redis_client, prefix, make_ticks(0, 6))
    assert len(await by_header.collect(6)) == len(await by_query.collect(6)) == 6
    await ws.close()


async def test_a_presented_key_must_be_valid_even_when_reads_are_open(
    make_streamer: StreamerFactory, db_url: str
) -> None:
    streamer = await make_streamer(database_url=SecretStr(db_url), api_key_pepper=SecretStr(PEPPER))
    assert (
        await streamer.get("/v1/stream", headers={"X-API-Key": "stk_000000000000_" + "y" * 43})
    ).status == 401
    open_stream = await streamer.get("/v1/stream")
    assert open_stream.status == 200
    open_stream.close()


async def test_subscribe_after_stop_all_and_plural_type_names(make_streamer: StreamerFactory) -> None:
    streamer = await make_streamer()
    ws = await streamer.ws_connect("/v1/ws")
    await ws.send_json({"type": "subscribe", "types": ["ticks", "signals"]})
    ack = await ws.receive_json()
    assert ack["types"] == ["signals", "ticks"], "acks use the request's plural names"
    await ws.send_json({"type": "unsubscribe"})
    assert (await ws.receive_json())["types"] == []
    await ws.send_json({"type": "subscribe", "symbols": ["AAPL"]})
    again = await ws.receive_json()
    assert again["symbols"] == ["AAPL"] and again["types"] == ["bars", "signals", "ticks"]
    await ws.close()
