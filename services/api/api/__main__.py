"""`python -m api`: serve the HTTP API on HTTP_PORT."""

from __future__ import annotations

import sys

from api.app import create_app
from api.settings import ApiSettings
from stocktrack_common.runtime import serve


def main() -> int:
    settings = ApiSettings()
    return serve(lambda: create_app(settings), settings, "api")


if __name__ == "__main__":
    sys.exit(main())
