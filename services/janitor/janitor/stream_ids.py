"""Redis stream ids as comparable tuples: "ms-seq" strings compare wrongly as text ("9-0" > "10-0")."""

from __future__ import annotations

StreamId = tuple[int, int]
_MAX_SEQ = 2**64 - 1


def parse_id(value: str | bytes) -> StreamId:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def successor(stream_id: StreamId) -> StreamId:
    """The smallest id greater than `stream_id`: every entry after it has an id >= this."""
    ms, seq = stream_id
    return (ms + 1, 0) if seq == _MAX_SEQ else (ms, seq + 1)
