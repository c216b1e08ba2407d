"""`python -m streamer`: serve SSE and WebSocket on HTTP_PORT."""

from __future__ import annotations

import sys

from stocktrack_common.gc_tuning import tune_collector
from stocktrack_common.runtime import serve
from streamer.app import create_app
from streamer.settings import StreamerSettings

# Collector thresholds for a process that keeps tens of thousands of recent events (the resume
# ring) and every client's connection objects alive, and replaces events at the tick rate. With
# the defaults (700, 10, 10) a full collection ran every few seconds and stopped every client for
# 40-150 ms (bench/stream.py, 1,000 clients at 2,000 ticks/s): most of the p99. A full
# collection now waits for 100 middle-generation ones, not 10; the young generations stay small
# (a 10,000 first threshold let 1,000 clients' connection objects pile up into one 190 ms
# middle-generation collection), so each young collection stays under ~10 ms.
GC_THRESHOLDS = (1_000, 10, 100)


def main() -> int:
    settings = StreamerSettings()
    tune_collector(GC_THRESHOLDS)
    return serve(lambda: create_app(settings), settings, "streamer")


if __name__ == "__main__":
    sys.exit(main())
