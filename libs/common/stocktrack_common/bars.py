"""The one model of OHLCV bars built from ticks: bucket, fold, close rule, and its SQL twin.

Every service that turns ticks into bars folds them here: the writer (`bars_1m`, in Python for
a new batch and in SQL for a redelivered one), the janitor (the roll-up of a tick partition
before it is dropped), the streamer (closed minutes on the live feed), the recommender (bars of
its interval) and alerts (the minute closes its RSI rules read). So they all agree on a bar.

The order rule: the ticks of a bar are ordered by (ts, price). The open is the price of the
first of them, the close the price of the last. High, low, volume and trades are order-free,
and `first_ts`/`last_ts` are the times of the open and close ticks (the least and greatest ts).

Why price breaks a tie of equal timestamps, not the stream id: the tie-break has to be known
wherever two partial bars of one bucket meet. A stored `bars_1m` row keeps its open and close
and their times, and nothing else; `ticks` keeps (symbol, ts, source), no stream id; a tick
the fetcher publishes again gets a new id, and a provider bar loaded by backfill never had one.
(ts, price) is known in all those places and depends only on the ticks themselves, so a stored
bar and a new partial bar merge by comparing the two rows alone (`MERGE_ON_CONFLICT`: the
least (first_ts, open) and the greatest (last_ts, close) win, extremes and sums combine). That
merge is commutative and associative: arrival order, batch boundaries, redelivered batches and
concurrent writers cannot change a stored bar. Two ticks with equal (ts, price) give the same
open or close whichever of them is taken. Consumers of the live streams close a bar once it has
ended (alerts at the first tick of a later bucket; the recommender and the streamer at its end
plus a grace, stocktrack_common.bar_closing); their bars equal the stored ones unless a tick
arrives after that (each of them documents what it does with such a late tick).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection

MINUTE_MS = 60_000


def bucket_of(ts_ms: int, interval_ms: int = MINUTE_MS) -> int:
    """Start of the bar holding `ts_ms`: bars are [bucket, bucket + interval) on the Unix epoch."""
    return ts_ms - ts_ms % interval_ms


@dataclass(slots=True)
class Bar:
    """One bar; times are epoch milliseconds, `bucket` its start."""

    bucket: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int
    first_ts: int
    last_ts: int

    @classmethod
    def of_tick(cls, bucket: int, ts: int, price: Decimal, size: int) -> Bar:
        return cls(bucket, price, price, price, price, size, 1, ts, ts)

    def add(self, ts: int, price: Decimal, size: int) -> None:
        """Fold in one tick of this bar's bucket (the order rule of the module docstring)."""
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if ts < self.first_ts or (ts == self.first_ts and price < self.open):
            self.open, self.first_ts = price, ts
        if ts > self.last_ts or (ts == self.last_ts and price > self.close):
            self.close, self.last_ts = price, ts
        self.volume += size
        self.trades += 1

    def to_state(self) -> dict[str, Any]:
        """JSON-safe form (prices as exact decimal text) for checkpoints and saved state."""
        return {
            "bucket": self.bucket,
            "open": format(self.open, "f"),
            "high": format(self.high, "f"),
            "low": format(self.low, "f"),
            "close": format(self.close, "f"),
            "volume": self.volume,
            "trades": self.trades,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Bar:
        return cls(
            bucket=int(state["bucket"]),
            open=Decimal(state["open"]),
            high=Decimal(state["high"]),
            low=Decimal(state["low"]),
            close=Decimal(state["close"]),
            volume=int(state["volume"]),
            trades=int(state["trades"]),
            first_ts=int(state["first_ts"]),
            last_ts=int(state["last_ts"]),
        )


# --- The same model in SQL, for bars_1m ------------------------------------------------------

# The bucket of `bucket_of(ts, MINUTE_MS)`, independent of the session's TimeZone.
BUCKET_1M_SQL = "date_bin('1 minute', {ts}, timestamptz 'epoch')"

BAR_COLUMNS = "symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts"

# Merge a new partial bar (`excluded`, disjoint ticks) into the stored one (`b`) by the order rule.
MERGE_ON_CONFLICT = """
ON CONFLICT (symbol, bucket) DO UPDATE SET
    open = CASE WHEN (excluded.first_ts, excluded.open) < (b.first_ts, b.open) THEN excluded.open ELSE b.open END,
    close = CASE WHEN (excluded.last_ts, excluded.close) > (b.last_ts, b.close) THEN excluded.close ELSE b.close END,
    high = greatest(b.high, excluded.high),
    low = least(b.low, excluded.low),
    volume = b.volume + excluded.volume,
    trades = b.trades + excluded.trades,
    first_ts = least(b.first_ts, excluded.first_ts),
    last_ts = greatest(b.last_ts, excluded.last_ts)
"""

# Rows are inserted in (symbol, bucket) order, bytewise like Python's sort of the same keys, so
# concurrent writers lock bar rows in one order and cannot deadlock each other.
_ROLL_UP = f"""
INSERT INTO bars_1m AS b ({BAR_COLUMNS})
SELECT symbol, {BUCKET_1M_SQL.format(ts="ts")} AS bucket,
       (array_agg(price ORDER BY ts, price))[1], max(price), min(price),
       (array_agg(price ORDER BY ts DESC, price DESC))[1],
       sum(size), count(*), min(ts), max(ts)
FROM {{source}}
GROUP BY 1, 2
ORDER BY symbol COLLATE "C", bucket
"""


def roll_up_1m_sql(source: str, *, merge: bool) -> str:
    """SQL folding the ticks in `source` (a table or CTE with symbol, ts, price, size) into bars_1m.

    merge=True merges into stored bars (the writer: its ticks are new, so the bar grows by
    them); merge=False leaves stored bars alone (the janitor: it only fills missing buckets, and
    a bar a writer stored meanwhile already counts those ticks).
    """
    conflict = MERGE_ON_CONFLICT if merge else "ON CONFLICT (symbol, bucket) DO NOTHING\n"
    return _ROLL_UP.format(source=source) + conflict


# A coarser bar from the 1-minute bars of a group (rows of bars_1m grouped by the coarser
# bucket). 1-minute buckets are disjoint and ordered, so by the order rule the open of the
# first minute and the close of the last are the coarser bar's open and close. Used by the api
# (bars of any interval) and the recommender (warm-up bars of its interval).
COARSER_FROM_1M_AGGREGATES = """(array_agg(open ORDER BY bucket))[1] AS open, max(high) AS high, min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close, sum(volume)::bigint AS volume,
       sum(trades)::bigint AS trades, min(first_ts) AS first_ts, max(last_ts) AS last_ts"""

# Parameters are whole arrays as PostgreSQL array text, one string per column, and times are
# epoch milliseconds: psycopg's per-element dumping of Decimal and datetime lists cost the writer
# more CPU than the rest of a batch (py-spy under bench/soak.py), while one string per column is
# sent as it is and parsed by the server, on its own core. Epoch + n * 1 ms is exact.
UPSERT_1M = (
    f"""
INSERT INTO bars_1m AS b ({BAR_COLUMNS})
SELECT s, timestamptz 'epoch' + bk * interval '1 millisecond', o, h, l, c, v, t,
       timestamptz 'epoch' + f * interval '1 millisecond', timestamptz 'epoch' + la * interval '1 millisecond'
FROM unnest(%s::text[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[],
            %s::bigint[], %s::integer[], %s::bigint[], %s::bigint[]) AS u(s, bk, o, h, l, c, v, t, f, la)
"""
    + MERGE_ON_CONFLICT
)


def _array_text(values: Sequence[object]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def upsert_1m_params(bars: Mapping[tuple[str, int], Bar]) -> tuple[str, ...]:
    """The arrays `UPSERT_1M` takes, as array text, in (symbol, bucket) order like the roll-up's rows."""
    keys = sorted(bars)
    values = [bars[k] for k in keys]
    return (
        "{" + ",".join(_quoted(k[0]) for k in keys) + "}",
        _array_text([k[1] for k in keys]),
        _array_text([b.open for b in values]),
        _array_text([b.high for b in values]),
        _array_text([b.low for b in values]),
        _array_text([b.close for b in values]),
        _array_text([b.volume for b in values]),
        _array_text([b.trades for b in values]),
        _array_text([b.first_ts for b in values]),
        _array_text([b.last_ts for b in values]),
    )


# --- Rebuilding a stored bar after its ticks changed ---------------------------------------

# The (symbol, bucket) keys as two arrays; buckets are epoch milliseconds, as in UPSERT_1M.
_KEYS_1M = """unnest(%s::text[], %s::bigint[]) AS k(symbol, bk)"""
_KEY_BUCKET = "timestamptz 'epoch' + k.bk * interval '1 millisecond'"

# Row locks in (symbol, bucket) order, the order every writer upserts bars in (no deadlocks).
# A writer merging new ticks into one of these bars waits for this transaction and then merges
# into the rebuilt row; one that merged first has committed its ticks, so the rebuild, a later
# statement with a later snapshot, counts them.
_LOCK_1M = f"""
SELECT 1 FROM bars_1m b JOIN {_KEYS_1M} ON b.symbol = k.symbol AND b.bucket = {_KEY_BUCKET}
ORDER BY b.symbol COLLATE "C", b.bucket
FOR UPDATE OF b
"""

_DELETE_1M = f"""
DELETE FROM bars_1m b USING {_KEYS_1M} WHERE b.symbol = k.symbol AND b.bucket = {_KEY_BUCKET}
"""

_REBUILD_1M = roll_up_1m_sql(
    f"""(SELECT t.symbol, t.ts, t.price, t.size FROM ticks t JOIN {_KEYS_1M}
       ON t.symbol = k.symbol AND t.ts >= {_KEY_BUCKET} AND t.ts < {_KEY_BUCKET} + interval '1 minute'
    ) AS minute_ticks""",
    merge=False,
)


async def recompute_1m(conn: AsyncConnection[Any], keys: Iterable[tuple[str, int]]) -> None:
    """Rebuild the bars_1m rows of (symbol, bucket ms) from the ticks stored in those minutes.

    For when stored ticks changed rather than grew (a trade corrected or cancelled), which the
    merge cannot express: it only adds ticks to a bar. A minute left without ticks loses its
    bar. Runs inside the caller's transaction, so the ticks' change and their bars commit
    together. The one place a stored minute is rebuilt; the coarser roll-ups kept from bars_1m
    follow by themselves (the triggers of migration 0008 mark the buckets of the deleted and
    rebuilt rows, and the writers' roller recomputes them).
    """
    ordered = sorted(set(keys))
    if not ordered:
        return
    params = ("{" + ",".join(_quoted(s) for s, _ in ordered) + "}", _array_text([b for _, b in ordered]))
    await conn.execute(_LOCK_1M, params)
    await conn.execute(_DELETE_1M, params)
    await conn.execute(_REBUILD_1M, params)
