"""`stocktrack backfill`: fill daily_bars or bars_1m from a provider, or daily_bars from a CSV file.

  stocktrack backfill --provider alphavantage --symbols AAPL,MSFT --from 2015-01-01 [--interval 1d|1m]
  stocktrack backfill --csv prices.csv [--symbols AAPL]   (columns: docs/providers.md)

Keys and DATABASE_URL come from the environment, as for the fetcher service.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import structlog
from tqdm import tqdm

from fetcher.backfill import BackfillResult, HistoryClient, backfill
from fetcher.providers.plugin import ProviderPlugin, load_plugins
from fetcher.settings import FetcherSettings
from stocktrack_common.daily_bars_csv import DailyBarsCSVError, read_daily_bars_file, upsert_daily_bars
from stocktrack_common.json_logging import configure_logging
from stocktrack_common.settings import parse_symbol_list

CSV_BATCH = 5000

log = structlog.get_logger(__name__)


def history_providers() -> dict[str, ProviderPlugin]:
    """Registered providers that can serve history."""
    return {name: plugin for name, plugin in load_plugins().items() if plugin.history_client is not None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stocktrack backfill", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--provider", choices=sorted(history_providers()), help="provider to download from")
    source.add_argument("--csv", type=Path, help="local CSV of daily bars (.gz accepted)")
    parser.add_argument("--symbols", help="comma-separated symbols (default: SYMBOLS; with --csv: filter)")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", type=date.fromisoformat, help="last day (default: today)")
    parser.add_argument("--interval", choices=["1d", "1m"], default="1d")
    parser.add_argument("--source", default="csv", help="value of daily_bars.source for --csv rows")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def load_csv(database_url: str, path: Path, symbols: list[str] | None, source: str, progress: bool) -> int:
    """Parse the whole file first (a bad line aborts before anything is written), then upsert in batches."""
    single = symbols[0] if symbols and len(symbols) == 1 else None
    bars = read_daily_bars_file(path, symbol=single, source=source, symbols=symbols)
    written = 0
    with (
        psycopg.connect(database_url) as conn,
        tqdm(total=len(bars), unit="bar", disable=not progress) as bar,
    ):
        for i in range(0, len(bars), CSV_BATCH):
            chunk = bars[i : i + CSV_BATCH]
            with conn.transaction():
                written += upsert_daily_bars(conn, chunk)
            bar.update(len(chunk))
    return written


async def _run_provider(
    settings: FetcherSettings, args: argparse.Namespace, symbols: list[str]
) -> BackfillResult:
    plugin = history_providers()[args.provider]
    build = plugin.history_client
    if build is None:
        raise ValueError(f"provider {args.provider!r} serves no history")
    client: HistoryClient = build(settings, plugin.own_settings())
    try:
        return await backfill(
            settings.database_url.get_secret_value(),
            client,
            symbols,
            args.start,
            args.end or datetime.now(UTC).date(),
            interval=args.interval,
            progress=not args.no_progress,
        )
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    settings = FetcherSettings()
    configure_logging("fetcher-backfill", settings.log_level, settings.log_format)
    try:
        symbols = parse_symbol_list(args.symbols) if args.symbols else None
    except ValueError as exc:
        print(f"stocktrack backfill: {exc}", file=sys.stderr)
        return 2
    if args.csv is not None:
        try:
            written = load_csv(
                settings.database_url.get_secret_value(), args.csv, symbols, args.source, not args.no_progress
            )
        except (DailyBarsCSVError, OSError) as exc:
            print(f"stocktrack backfill: {exc}", file=sys.stderr)
            return 1
        log.info("csv backfill finished", file=str(args.csv), rows_written=written)
        return 0
    if args.start is None:
        print("stocktrack backfill: --from is required with --provider", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run_provider(settings, args, symbols or settings.symbols))
    except ValueError as exc:
        print(f"stocktrack backfill: {exc}", file=sys.stderr)
        return 2
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
