"""Stream positions and the opaque event ids built from them.

An event id is the reader's position in every stream it reads (one Redis entry id per stream)
right after that event, plus the number of a closed bar sent at that position (the first, second...
bar closed by the tick at that position, then those the close timer sent before the next entry).
That vector is all a reconnecting client needs: every entry after it, in every stream, is what
it missed. The ids carry a fingerprint of the stream layout, so an id from a differently
configured deployment is refused instead of misread.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass

from stocktrack_common.stream_ids import StreamId, format_stream_id, parse_stream_id

ZERO: StreamId = (0, 0)


class BadEventId(ValueError):
    """A resume id that this streamer did not issue (or that was edited)."""


def layout_fingerprint(streams: list[str]) -> str:
    return format(zlib.crc32("\n".join(streams).encode()), "08x")


@dataclass(frozen=True)
class Position:
    entries: tuple[StreamId, ...]
    after_bar: int = 0  # 0: the entry's own event; n: the n-th bar sent after it


class PositionCodec:
    def __init__(self, streams: list[str]) -> None:
        self.size = len(streams)
        self.fingerprint = layout_fingerprint(streams)

    def encode(self, entries: tuple[StreamId, ...] | list[StreamId], after_bar: int = 0) -> str:
        # The first bar keeps the plain ",b" of ids issued before bars could close on a timer.
        suffix = "" if after_bar == 0 else ",b" if after_bar == 1 else f",b{after_bar}"
        text = ",".join(map(format_stream_id, entries)) + suffix
        return f"{self.fingerprint}.{base64.urlsafe_b64encode(text.encode()).decode().rstrip('=')}"

    def decode(self, event_id: str) -> Position:
        fingerprint, _, payload = event_id.strip().partition(".")
        if fingerprint != self.fingerprint:
            raise BadEventId("event id is not from this stream layout")
        try:
            text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
            parts = text.split(",")
            after_bar = 0
            if parts[-1].startswith("b"):
                after_bar = int(parts.pop()[1:] or "1")
                if after_bar < 1:
                    raise ValueError("bar numbers start at 1")
            entries = tuple(parse_stream_id(p) for p in parts)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadEventId("malformed event id") from exc
        if len(entries) != self.size or any(ms < 0 or seq < 0 for ms, seq in entries):
            raise BadEventId("malformed event id")
        return Position(entries, after_bar)
