"""`python -m streamer`: serve SSE and WebSocket on HTTP_PORT."""

from __future__ import annotations

import sys

from stocktrack_common.runtime import serve
from streamer.app import create_app
from streamer.settings import StreamerSettings


def main() -> int:
    settings = StreamerSettings()
    return serve(lambda: create_app(settings), settings, "streamer")


if __name__ == "__main__":
    sys.exit(main())
