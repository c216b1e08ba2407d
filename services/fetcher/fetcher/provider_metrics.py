"""Prometheus series of the provider layer (the published-ticks counter belongs to the publisher).

Labels are provider and outcome only: no symbol labels, so the series count stays bounded
however long the watch list grows.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from stocktrack_common.messages import Tick, TradeAmendment

PROVIDER_REQUESTS = Counter(
    "stocktrack_fetcher_provider_requests_total",
    "Provider HTTP requests by outcome (ok, rate_limited, server_error, timeout, malformed, ...)",
    ["provider", "outcome"],
)
RATE_LIMIT_WAITS = Counter(
    "stocktrack_fetcher_rate_limit_waits_total",
    "Requests that had to wait for a token of the provider's token bucket",
    ["provider"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "stocktrack_fetcher_rate_limit_wait_seconds_total",
    "Time spent waiting for provider rate-limit tokens",
    ["provider"],
)
RETRIES = Counter(
    "stocktrack_fetcher_provider_retries_total",
    "Requests retried after a retryable failure (429, 5xx, timeout)",
    ["provider", "outcome"],
)
CIRCUIT_OPEN = Gauge(
    "stocktrack_fetcher_circuit_open",
    "1 while the provider's circuit breaker is open (requests skipped)",
    ["provider"],
)
FAILOVERS = Counter(
    "stocktrack_fetcher_failovers_total",
    "Quotes served by a provider other than the first of the symbol's chain",
    ["provider"],
)
QUOTES = Counter(
    "stocktrack_fetcher_quotes_total",
    "Provider observations by fate: new tick, stale (provider time unchanged) or duplicate",
    ["provider", "outcome"],
)
QUOTE_LAG = Histogram(
    "stocktrack_fetcher_quote_lag_seconds",
    "Delay between the provider's quote time and the hand-off of the tick for publishing",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
STREAM_RECONNECTS = Counter(
    "stocktrack_fetcher_stream_reconnects_total",
    "Streaming connections re-established after a drop",
    ["provider"],
)
STREAMED_SYMBOLS = Gauge(
    "stocktrack_fetcher_streamed_symbols",
    "Symbols the provider's WebSocket currently streams (the rest of the watch list is polled)",
    ["provider"],
)
TRADE_AMENDMENTS = Counter(
    "stocktrack_fetcher_trade_amendments_total",
    "Trade corrections and cancels seen on a trade stream, published to the amendments stream",
    ["provider", "kind"],
)
GAP_BACKFILLS = Counter(
    "stocktrack_fetcher_gap_backfills_total",
    "Per-symbol REST backfills of a streaming gap, by outcome (filled, failed)",
    ["provider", "outcome"],
)
QUOTA_REMAINING = Gauge(
    "stocktrack_fetcher_daily_quota_remaining",
    "Requests left in the provider's daily budget (shared through Redis by every replica)",
    ["provider"],
)
WATCHLIST_SIZE = Gauge("stocktrack_fetcher_watchlist_symbols", "Symbols currently polled or subscribed")
WATCHLIST_RELOAD_FAILURES = Counter(
    "stocktrack_fetcher_watchlist_reload_failures_total", "Failed reloads of the symbols table"
)
BACKFILL_ROWS = Counter(
    "stocktrack_fetcher_backfill_rows_total", "Rows upserted by backfill", ["provider", "interval"]
)


def observe_quote_lag(ticks: Iterable[Tick | TradeAmendment], now_s: float) -> None:
    """Record quote-to-hand-off lag; replayed history is excluded since its age is not a delay."""
    for tick in ticks:
        if tick.source == "replay" or isinstance(tick, TradeAmendment):
            continue
        QUOTE_LAG.labels(tick.source).observe(max(0.0, now_s - tick.ts / 1000.0))
