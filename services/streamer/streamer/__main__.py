"""`python -m streamer`: serve SSE and WebSocket on HTTP_PORT."""

from __future__ import annotations

import gc
import sys

from stocktrack_common.runtime import serve
from streamer.app import create_app
from streamer.settings import StreamerSettings

# Collector thresholds for a process that keeps tens of thousands of recent events (the resume
# ring) and every client's connection objects alive, and replaces events at the tick rate. With
# the defaults (700, 10, 10) a full collection ran every few seconds and stopped every client for
# 40-150 ms (bench/stream.py, 1,000 clients at 2,000 ticks/s): most of the p99. Younger
# collections now run every 10,000 allocations and a full one after 100 of them.
GC_THRESHOLDS = (10_000, 10, 100)


def main() -> int:
    settings = StreamerSettings()
    # What the imports created lives as long as the process: keep it out of every collection.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return serve(lambda: create_app(settings), settings, "streamer")


if __name__ == "__main__":
    sys.exit(main())
