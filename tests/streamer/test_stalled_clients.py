"""A client that stops reading is dropped within the send deadline; everyone else gets every event.

The stalled clients are raw sockets with a small receive buffer that never call recv(): the
kernel's buffers absorb what they can, then the server's sends stop completing. The bound under
test is the documented one (docs/api.md, "Slow clients"): once a client has left more than
STREAMER_SEND_BUFFER_BYTES untaken, it is dropped when a send has not completed within
STREAMER_SEND_TIMEOUT_SECONDS - long before its backlog could reach STREAMER_CLIENT_QUEUE.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import socket
import struct
import time

import orjson
import pytest
import redis.asyncio as aioredis

from stocktrack_common.messages import Tick
from stocktrack_common.stream_names import shard_for, tick_stream
from streamer.state import HUB
from tests.streamer.conftest import SseReader, StreamerFactory
from tests.support.waiting import wait_until_async

# On both loops: production serves on uvloop, whose transports are no asyncio.WriteTransport.
pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

SHARDS = 2
QUEUE = 5000
SEND_TIMEOUT = 2.0
BATCH = 40  # ticks per publish round; one round every 50 ms
FAST_SSE, FAST_WS = 20, 10


def small_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # before connect, so the window stays small
    sock.setsockopt(
        socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460
    )  # Ethernet-sized segments, not loopback's 64 KiB
    sock.connect(("127.0.0.1", port))
    return sock


def stalled_sse(port: int) -> socket.socket:
    sock = small_buffer_socket(port)
    sock.sendall(b"GET /v1/stream?types=ticks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def masked_text_frame(text: bytes) -> bytes:
    """A client-to-server text frame (RFC 6455 section 5.2: clients must mask)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    assert len(body) < 126
    return bytes([0x81, 0x80 | len(body)]) + mask + body


def stalled_ws(port: int) -> socket.socket:
    sock = small_buffer_socket(port)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(masked_text_frame(orjson.dumps({"type": "subscribe", "types": ["ticks"]})))
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server left for this client, up to its close (the client finally reads).

    A raw WebSocket client never answers the server's close frame, so the server ends that
    connection with a reset once its final deadline passes; what arrived before is kept.
    """
    sock.settimeout(10)
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def ticks(start: int, count: int) -> list[Tick]:
    return [
        Tick(
            symbol=("AAPL", "MSFT", "NVDA")[i % 3],
            ts=1_714_570_200_000 + i,
            price=f"{100 + i % 17}.25",
            size=1,
            source="sim",
        )
        for i in range(start, start + count)
    ]


async def dropped(streamer: object, transport: str) -> float:
    text = await (await streamer.get("/metrics")).text()  # type: ignore[attr-defined]
    found = re.search(rf'stocktrack_streamer_clients_dropped_total\{{transport="{transport}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


async def test_stalled_sse_and_websocket_clients_are_dropped_while_others_get_every_event(
    make_streamer: StreamerFactory, redis_client: aioredis.Redis, prefix: str
) -> None:
    streamer = await make_streamer(
        streamer_client_queue=QUEUE,
        streamer_send_buffer_bytes=4096,
        streamer_send_timeout_seconds=SEND_TIMEOUT,
    )
    hub = streamer.server.app[HUB]
    port = streamer.server.port
    assert port is not None
    before = {t: await dropped(streamer, t) for t in ("sse", "ws")}

    fast_sse = [SseReader(await streamer.get("/v1/stream?types=ticks")) for _ in range(FAST_SSE)]
    fast_ws = []
    for _ in range(FAST_WS):
        ws = await streamer.ws_connect("/v1/ws")
        await ws.send_json({"type": "subscribe", "types": ["ticks"]})
        assert (await ws.receive_json())["type"] == "subscribed"
        fast_ws.append(ws)
    stalled = [stalled_sse(port), stalled_ws(port)]
    await wait_until_async(
        lambda: len(hub.subscriptions) == FAST_SSE + FAST_WS + 2, 10, "every client subscribed"
    )

    async def read_sse(reader: SseReader, want: int) -> list[int]:
        got: list[int] = []
        while len(got) < want:
            record = await reader.next()
            if record.get("event") == "tick":
                got.append(record["data"]["ts"])
        return got

    async def read_ws(ws: object, want: int) -> list[int]:
        got: list[int] = []
        while len(got) < want:
            message = await ws.receive_json()  # type: ignore[attr-defined]
            if message["type"] == "tick":
                got.append(message["data"]["ts"])
        return got

    # Each stalled client starts reading as soon as it is dropped: it is given two more send
    # deadlines to take the final error event before the server cuts it off.
    leftovers: dict[str, asyncio.Future[bytes]] = {}
    published = 0
    started = time.monotonic()
    while len(leftovers) < 2:
        assert time.monotonic() - started < 20, "stalled clients were never dropped"
        pipe = redis_client.pipeline(transaction=False)
        for tick in ticks(published, BATCH):
            pipe.xadd(tick_stream(prefix, shard_for(tick.symbol, SHARDS)), tick.to_fields())  # type: ignore[arg-type]
        await pipe.execute()
        published += BATCH
        await asyncio.sleep(0.05)
        for transport, sock in zip(("sse", "ws"), stalled, strict=True):
            if transport not in leftovers and await dropped(streamer, transport) > before[transport]:
                leftovers[transport] = asyncio.ensure_future(asyncio.to_thread(read_to_end, sock))
    took = time.monotonic() - started

    # Dropped by the send deadline, not by the backlog: far fewer events than the queue limit existed.
    assert published < QUEUE
    # The deadline bounds the drop once the buffers are full; filling them (publishing in steps of
    # BATCH) took under a second on an idle machine and about three on a loaded one.
    assert took < SEND_TIMEOUT + 5, f"dropped after {took:.1f}s"
    print(f"both stalled clients dropped {took:.2f}s after publishing began; {published} ticks published")

    # Every other client received every event, all in the hub's one order (entry ids across shards).
    expected = [t.ts for t in ticks(0, published)]
    async with asyncio.timeout(20):
        results = await asyncio.gather(
            *(read_sse(r, published) for r in fast_sse), *(read_ws(w, published) for w in fast_ws)
        )
    assert sorted(results[0]) == expected
    assert all(result == results[0] for result in results)

    # What the stalled clients find: the error event, last thing before the close.
    sse_bytes, ws_bytes = await leftovers["sse"], await leftovers["ws"]
    assert b"event: error" in sse_bytes and b'"code":"slow_consumer"' in sse_bytes
    assert sse_bytes.rstrip().endswith(b"0")  # the chunked body's terminating chunk: a clean end
    assert b"event: tick" not in sse_bytes[sse_bytes.index(b"event: error") :]
    assert b'"code":"slow_consumer"' in ws_bytes
    assert struct.pack("!BBH", 0x88, 0x0F, 1013) in ws_bytes  # close frame, 1013 "try again later"
    for ws in fast_ws:
        await ws.close()
