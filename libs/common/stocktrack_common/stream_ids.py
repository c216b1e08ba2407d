"""Redis stream entry ids as comparable (milliseconds, sequence) tuples.

As text, "ms-seq" ids compare wrongly ("9-0" > "10-0"), so every service that orders,
deduplicates or resumes by entry id converts them here first.
"""

from __future__ import annotations

StreamId = tuple[int, int]
_MAX_SEQ = 2**64 - 1


def parse_stream_id(value: str | bytes) -> StreamId:
    """'1714570200000-3' (or bytes, or a bare '1714570200000') -> (1714570200000, 3)."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_stream_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def next_stream_id(stream_id: StreamId) -> StreamId:
    """The smallest id greater than `stream_id`: every entry after it has an id >= this."""
    ms, seq = stream_id
    return (ms + 1, 0) if seq == _MAX_SEQ else (ms, seq + 1)
