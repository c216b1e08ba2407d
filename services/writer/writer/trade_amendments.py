"""Trade corrections and cancels applied to stored ticks and their minute bars, idempotently.

Every amendment received is recorded in `trade_amendments`, the first per (source, symbol,
trade id); then every recorded amendment of the trade ids at hand is applied to the stored
ticks: a correction sets the tick's price and size and gives it the corrected trade's id, a
cancel deletes it, and the minute bars of the ticks that changed are rebuilt from their ticks
(`stocktrack_common.bars.recompute_1m`). Applying is a function of the table, not of arrival:

- a redelivered amendment conflicts on its key and its trade id no longer names a stored tick
  (a corrected tick carries its new id, a cancelled one is gone), so nothing changes;
- an amendment that arrives before its trade is stored waits in the table (applied_at null)
  and the writer applies it in the transaction that stores the trade (`TickSink`), so the
  trade never shows unamended in a committed state;
- a trade stored again after its cancel (a tick batch redelivered after the writer crashed
  before acking it) is deleted again in that same transaction, so a cancel cannot be undone;
- a correction's new id is followed: a cancel of the corrected trade, recorded meanwhile, is
  applied in the same call.
A second, different amendment of a trade id already amended is not recorded (the first wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection

from stocktrack_common.bars import bucket_of, recompute_1m
from stocktrack_common.messages import TradeAmendment

TradeKey = tuple[str, str, str]
"""(source, symbol, trade id): how an amendment names a stored tick."""

_RECORD = """
INSERT INTO trade_amendments AS a
    (source, symbol, trade_id, kind, price, size, corrected_trade_id, ts)
SELECT src, sym, tid, kind, price, size, nullif(cid, ''),
       timestamptz 'epoch' + ms * interval '1 millisecond'
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::numeric[], %s::bigint[], %s::text[],
            %s::bigint[]) AS u(src, sym, tid, kind, price, size, cid, ms)
ON CONFLICT (source, symbol, trade_id) DO NOTHING
"""

# One statement: the corrected and cancelled ticks, marked applied. Ticks are found through the
# partial index on (symbol, source, trade_id), in every retained day's partition.
_APPLY = """
WITH wanted AS (
    SELECT a.* FROM trade_amendments a
    JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(source, symbol, trade_id)
      ON a.source = k.source AND a.symbol = k.symbol AND a.trade_id = k.trade_id
), corrected AS (
    UPDATE ticks t SET price = w.price, size = w.size, trade_id = w.corrected_trade_id
    FROM wanted w
    WHERE w.kind = 'correction' AND t.symbol = w.symbol AND t.source = w.source AND t.trade_id = w.trade_id
    RETURNING t.source, t.symbol, w.trade_id AS amended, t.trade_id AS now_id,
              (extract(epoch FROM t.ts) * 1000)::bigint AS ts_ms
), cancelled AS (
    DELETE FROM ticks t USING wanted w
    WHERE w.kind = 'cancel' AND t.symbol = w.symbol AND t.source = w.source AND t.trade_id = w.trade_id
    RETURNING t.source, t.symbol, w.trade_id AS amended, NULL::text AS now_id,
              (extract(epoch FROM t.ts) * 1000)::bigint AS ts_ms
), changed AS (
    SELECT * FROM corrected UNION ALL SELECT * FROM cancelled
), marked AS (
    UPDATE trade_amendments a SET applied_at = now()
    FROM changed c
    WHERE a.source = c.source AND a.symbol = c.symbol AND a.trade_id = c.amended AND a.applied_at IS NULL
)
SELECT source, symbol, now_id, ts_ms FROM changed
"""


@dataclass(frozen=True)
class Applied:
    """What applying changed: ticks corrected or removed, and the minute bars rebuilt."""

    ticks: int = 0
    bars: int = 0


def _text_array(values: Iterable[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _array(values: Iterable[object]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


async def record(conn: AsyncConnection, amendments: Sequence[TradeAmendment]) -> int:
    """Store the amendments not stored yet (by trade id); returns how many were new."""
    if not amendments:
        return 0
    cur = await conn.execute(
        _RECORD,
        (
            _text_array(a.source for a in amendments),
            _text_array(a.symbol for a in amendments),
            _text_array(a.trade for a in amendments),
            _text_array(a.kind for a in amendments),
            _array(format(a.price, "f") for a in amendments),
            _array(a.size for a in amendments),
            _text_array(a.corrected_trade or "" for a in amendments),
            _array(a.ts for a in amendments),
        ),
    )
    return cur.rowcount


async def apply(conn: AsyncConnection, keys: Iterable[TradeKey]) -> Applied:
    """Apply the recorded amendments of these trade ids to the stored ticks and rebuild their bars."""
    pending = set(keys)
    seen: set[TradeKey] = set()
    bars: set[tuple[str, int]] = set()
    ticks = 0
    while pending:
        seen |= pending
        ordered = sorted(pending)
        cur = await conn.execute(
            _APPLY,
            (
                _text_array(k[0] for k in ordered),
                _text_array(k[1] for k in ordered),
                _text_array(k[2] for k in ordered),
            ),
        )
        pending = set()
        for source, symbol, now_id, ts_ms in await cur.fetchall():
            ticks += 1
            bars.add((symbol, bucket_of(int(ts_ms))))
            if now_id is not None and (source, symbol, now_id) not in seen:
                pending.add((source, symbol, now_id))
    await recompute_1m(conn, bars)
    return Applied(ticks, len(bars))


async def write(conn: AsyncConnection, amendments: Sequence[TradeAmendment]) -> tuple[int, Applied]:
    """Record a batch of amendments and apply them, in one transaction: (new records, what changed)."""
    async with conn.transaction():
        new = await record(conn, amendments)
        applied = await apply(conn, ((a.source, a.symbol, a.trade) for a in amendments))
    return new, applied
