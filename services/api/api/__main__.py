"""`python -m api`: serve the HTTP API on HTTP_PORT."""

from __future__ import annotations

import sys

from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.gc_tuning import tune_collector
from stocktrack_common.runtime import serve

# The api keeps little alive between requests, but its imports (pydantic schemas, aiohttp,
# psycopg, prometheus_client) leave a large heap that every full collection walked: under
# bench/api.py's load (concurrency 32) a full collection ran every few seconds and took 48-160 ms
# on this machine, stalling every request in flight. With the imports frozen and these
# thresholds, 9 s of that load ran one young collection (about 1 ms).
GC_THRESHOLDS = (10_000, 10, 100)


def main() -> int:
    settings = ApiSettings()
    tune_collector(GC_THRESHOLDS)
    return serve(lambda: create_app(settings), settings, "api")


if __name__ == "__main__":
    sys.exit(main())
