"""One event as clients see it, serialised once however many clients receive it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

EVENT_TYPES = {"ticks": "tick", "signals": "signal", "bars": "bar"}
TIMER = -1  # the `stream` of a bar the close timer sent: no stream entry produced it


@dataclass(slots=True)
class Event:
    id: str
    type: str  # tick | signal | bar
    symbol: str
    stream: int  # index of the stream the entry came from, or TIMER
    entry: tuple[int, int]  # the entry that produced it (a bar: the tick that closed it)
    data: dict[str, Any]
    _sse: bytes | None = field(default=None, repr=False)
    _ws: str | None = field(default=None, repr=False)

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = b"id: %s\nevent: %s\ndata: %s\n\n" % (
                self.id.encode(),
                self.type.encode(),
                orjson.dumps(self.data),
            )
        return self._sse

    @property
    def ws(self) -> str:
        if self._ws is None:
            self._ws = orjson.dumps({"type": self.type, "id": self.id, "data": self.data}).decode()
        return self._ws
