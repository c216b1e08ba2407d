"""`stocktrack replay FILE [--speed 60]`: run the fetcher on a recording instead of a live provider.

The options become the REPLAY_* settings and the normal fetcher starts, so a replay publishes
exactly as live data would (same streams, same writer, same bars).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stocktrack replay", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="CSV or Parquet of ticks or bars (docs/providers.md)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="60 = one recorded minute per second; 0 = no pauses"
    )
    parser.add_argument("--kind", choices=["auto", "ticks", "bars"], default="auto")
    parser.add_argument("--bar-seconds", type=float, default=60.0, help="length of one bar in a bar file")
    parser.add_argument("--max-pause", type=float, help="cap any single pause (skips overnight gaps)")
    parser.add_argument("--shift-to-now", action="store_true", help="move the recording to start now")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.speed < 0:
        print("stocktrack replay: --speed must be >= 0", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"stocktrack replay: no such file: {args.file}", file=sys.stderr)
        return 2
    os.environ.update(
        PROVIDER="replay",
        REPLAY_PATH=str(args.file.resolve()),
        REPLAY_SPEED=str(args.speed),
        REPLAY_KIND=args.kind,
        REPLAY_BAR_SECONDS=str(args.bar_seconds),
        REPLAY_SHIFT_TO_NOW="true" if args.shift_to_now else "false",
    )
    if args.max_pause is not None:
        os.environ["REPLAY_MAX_PAUSE_SECONDS"] = str(args.max_pause)
    from fetcher.__main__ import main as fetcher_main

    return fetcher_main()


if __name__ == "__main__":
    sys.exit(main())
