"""The one stream consumer every worker uses: consumer groups with at-least-once delivery.

Life of an entry: XREADGROUP hands it to this consumer; it is decoded (a malformed entry is
dead-lettered at once, with the reason); the handler gets the whole batch; on success the
batch is XACKed. A handler error of a *transient* kind (database or Redis unreachable) keeps
the batch in memory and retries it with backoff, so an outage neither loses entries nor burns
their delivery count. Any other error splits the batch so one poison entry cannot block its
neighbours; entries that still fail stay pending, are re-read later, and go to the dead-letter
stream once delivered more than `max_deliveries` times. Entries left pending by a dead
consumer are claimed after `claim_idle_ms` (XAUTOCLAIM, carrying its cursor).

Everything here works on Redis 6.2: XAUTOCLAIM is 6.2, and group lag is counted where XINFO
GROUPS has no `lag` field (before 7.0) or reports one the stream contradicts (stream_lag.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import hiredis
import orjson
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stocktrack_common.backoff import backoff_delay
from stocktrack_common.emf import EmfDistributions
from stocktrack_common.health import Heartbeat
from stocktrack_common.lifecycle import sleep_or_stop
from stocktrack_common.messages import MessageError
from stocktrack_common.redis_client import is_cluster
from stocktrack_common.slot_reads import InFlightReads, slot_groups
from stocktrack_common.stream_lag import group_lag

M = TypeVar("M")
log = structlog.get_logger(__name__)

MESSAGES = Counter(
    "stocktrack_consumer_messages_total",
    "Stream entries by outcome: received, acked, retried, dead_lettered",
    ["group", "outcome"],
)
BATCH_SECONDS = Histogram(
    "stocktrack_consumer_batch_seconds",
    "Time to handle and acknowledge one batch",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG = Gauge(
    "stocktrack_consumer_lag", "Entries in the stream not yet delivered to the group", ["group", "stream"]
)
PENDING = Gauge(
    "stocktrack_consumer_pending", "Entries delivered to the group but not acknowledged", ["group", "stream"]
)
LAST_PROCESSED = Gauge(
    "stocktrack_consumer_last_processed_timestamp_seconds",
    "Unix time of the last batch this consumer acknowledged",
    ["group"],
)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)
try:  # psycopg is a dependency of common, but keep the consumer importable without a database
    import psycopg

    TRANSIENT_ERRORS = (*TRANSIENT_ERRORS, psycopg.OperationalError)
except ImportError:  # pragma: no cover
    pass


class Delivery(NamedTuple, Generic[M]):
    """One decoded stream entry handed to a handler (a tuple: cheapest to build per entry)."""

    stream: str
    id: str
    message: M


class _Read(NamedTuple):
    """What one read gave for one stream: its entries as the reply holds them.

    An entry is `[id, fields]`: a flat list `[name, value, ...]` from a single Redis (whose
    replies this consumer keeps raw), a dict from the cluster client (which parses them), and
    empty or None for a pending entry deleted from the stream. Nothing is built per entry
    until `_process` decodes it.
    """

    stream: str
    entries: list[Any]


class _Rejected(NamedTuple):
    stream: str
    id: str
    fields: dict[bytes, bytes] | None
    deliveries: int
    reason: str


@dataclass
class _ErrorMemory:
    """Last error per entry id, so a dead-letter record says why it kept failing."""

    limit: int = 10_000
    errors: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def remember(self, entry_id: str, error: str) -> None:
        self.errors[entry_id] = error
        self.errors.move_to_end(entry_id)
        while len(self.errors) > self.limit:
            self.errors.popitem(last=False)

    def pop(self, entry_id: str) -> str | None:
        return self.errors.pop(entry_id, None)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def dead_letter_fields(
    raw_fields: dict[bytes, bytes] | None,
    *,
    stream: str,
    entry_id: str,
    group: str,
    consumer: str,
    error: str,
    deliveries: int,
) -> dict[str, str]:
    """The dead-letter record: original fields as JSON plus where it came from and why."""
    original = {_s(k): v.decode("utf-8", "replace") for k, v in (raw_fields or {}).items()}
    return {
        "stream": stream,
        "id": entry_id,
        "group": group,
        "consumer": consumer,
        "error": error[:2000],
        "deliveries": str(deliveries),
        "dead_at": str(int(time.time() * 1000)),
        "fields": orjson.dumps(original).decode(),
    }


class StreamConsumer(Generic[M]):
    """Consume `streams` as `consumer` in `group`, handing decoded batches to `handler`.

    `decode` validates an entry's fields (a dict) or raises MessageError with the reason.
    `decode_flat`, when given, is tried first on an entry's flat field list as a single Redis
    returns it: it returns the message for an entry in the producer's own layout and None for
    anything else, which then goes through `decode` (so every reason for rejecting it is still
    `decode`'s). `decode_read`, when given, is tried before both on all the flat lists of a fresh
    read of one stream: it returns every entry's message, or None to leave each entry to the
    per-entry decoders. Both exist for hot streams, where work per entry is worth avoiding.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        streams: list[str],
        group: str,
        consumer: str,
        handler: Callable[[list[Delivery[M]]], Awaitable[None]],
        decode: Callable[[dict[bytes, bytes]], M],
        dead_stream: str,
        decode_flat: Callable[[list[bytes]], M | None] | None = None,
        decode_read: Callable[[list[list[bytes]]], list[M] | None] | None = None,
        batch_size: int = 500,
        block_ms: int = 1000,
        max_deliveries: int = 5,
        claim_idle_ms: int = 60_000,
        claim_interval: float = 15.0,
        retry_delay: float = 1.0,
        retry_backoff_base: float = 0.2,
        retry_backoff_cap: float = 5.0,
        stuck_after: float = 300.0,
        lag_interval: float = 5.0,
        heartbeat: Heartbeat | None = None,
        transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
        emf: EmfDistributions | None = None,
        presence_key: str | None = None,
        presence_ttl: float = 60.0,
    ) -> None:
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        self.redis = redis
        self.cluster = is_cluster(redis)
        self._reader: Any = redis
        if not self.cluster:
            # Same connection pool, but XREADGROUP replies stay raw: redis-py's generic reply parsing
            # costs more per entry than everything else the consumer does (see bench/ingest.py).
            self._reader = aioredis.Redis(connection_pool=redis.connection_pool)
            self._reader.set_response_callback("XREADGROUP", _raw_reply)
        self.streams = list(streams)
        self._slot_groups = slot_groups(self.streams, self.cluster)
        # On a cluster, one blocking read per slot stays in flight (slot_reads.py).
        self._in_flight: InFlightReads[list[_Read]] | None = None
        if len(self._slot_groups) > 1:
            self._in_flight = InFlightReads(
                self._slot_groups, lambda group: self._read_slot(dict.fromkeys(group, ">"), block=True)
            )
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.decode = decode
        self.decode_flat = decode_flat
        self.decode_read = decode_read
        self.dead_stream = dead_stream
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval = claim_interval
        self.retry_delay = retry_delay
        self.retry_backoff_base = retry_backoff_base
        self.retry_backoff_cap = retry_backoff_cap
        self.stuck_after = stuck_after
        self.lag_interval = lag_interval
        self.heartbeat = heartbeat or Heartbeat()
        self.transient_errors = transient_errors
        self.emf = emf
        self._errors = _ErrorMemory()
        self._claim_cursors = {s: "0-0" for s in self.streams}
        self._next_claim = 0.0
        self._retry_pending_at: float | None = None
        self._next_lag = 0.0
        self.presence_key = presence_key
        self.presence_ttl = presence_ttl
        self._next_presence = 0.0
        self._log = log.bind(group=group, consumer=consumer)
        self._liveness_key = f"consumer {group} on {','.join(self.streams)}"

    async def ensure_groups(self) -> None:
        """Create the group on every stream (MKSTREAM); an existing group is left as it is."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished and acked before returning."""
        attempt = 0
        while not stop.is_set():
            try:
                await self.ensure_groups()
                await self._drain_pending(stop)
                await self._loop(stop)
                attempt = 0
            except self.transient_errors as exc:
                delay = self._transient_failure(attempt)
                attempt += 1
                self._log.warning("redis unavailable, backing off", error=str(exc), delay_s=round(delay, 3))
                await sleep_or_stop(stop, delay)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or group vanished (e.g. Redis restarted without persistence): recreate.
                self._log.warning("consumer group missing, recreating", error=str(exc))
        if self.presence_key is not None:
            # A clean stop: this consumer is no longer reading, so the janitor may judge it by idle time.
            with contextlib.suppress(*self.transient_errors):
                await self.redis.delete(self.presence_key)
        self._log.info("consumer stopped")

    async def _loop(self, stop: asyncio.Event) -> None:
        """Read, process, ack; the next batch is read while the current one is processed.

        No read waits to fill a batch: a blocking read returns as soon as anything is there, and
        a read-ahead that came back while the batch was handled is topped up with what arrived
        since (`_top_up`), so under light load a batch is what is there, under heavy load a full
        read. The read-ahead overlaps Redis and the handler's own I/O (the database). It is settled
        before any pending-entry maintenance, which would otherwise see its entries as pending,
        and on the way out its entries are processed too: they were already delivered to us.
        """
        ahead: asyncio.Task[list[_Read]] | None = None
        try:
            while not stop.is_set():
                self.heartbeat.beat()
                now = time.monotonic()
                claim_due = now >= self._next_claim
                retry_due = self._retry_pending_at is not None and now >= self._retry_pending_at
                if (claim_due or retry_due) and ahead is not None:
                    reads, ahead = await ahead, None
                    if reads:
                        await self._process(reads, stop)
                if claim_due:
                    self._next_claim = now + self.claim_interval
                    if await self._claim_stale():
                        await self._drain_pending(stop)
                if retry_due:
                    self._retry_pending_at = None
                    await self._drain_pending(stop)
                if now >= self._next_lag:
                    self._next_lag = now + self.lag_interval
                    await self.update_lag_metrics()
                if self.presence_key is not None and now >= self._next_presence:
                    self._next_presence = now + self.presence_ttl / 4
                    await self.redis.set(self.presence_key, b"1", ex=max(1, round(self.presence_ttl)))
                if ahead is not None:
                    settled = ahead.done()
                    reads, ahead = await ahead, None
                    if settled:
                        reads += await self._top_up(reads)
                else:
                    reads = await self._read(dict.fromkeys(self.streams, ">"), block=True)
                self.heartbeat.recovered(self._liveness_key)
                if reads:
                    if not stop.is_set():
                        ahead = asyncio.create_task(self._read(dict.fromkeys(self.streams, ">"), block=True))
                    await self._process(reads, stop)
        finally:
            if ahead is not None:
                await self._finish_read_ahead(ahead, stop)
            if self._in_flight is not None:
                await self._finish_in_flight(self._in_flight, stop)

    async def _top_up(self, reads: list[_Read]) -> list[_Read]:
        """What arrived since a read-ahead that finished while the previous batch was handled.

        The read-ahead returns as soon as anything is there, often the first entries of a burst
        whose rest arrives while the previous batch is still being handled. Without a second
        look, the rest would wait for a whole extra batch. The per-stream read size still
        bounds the combined batch (a stream giving the full size means it may hold more).
        """
        if self.cluster or not reads:
            return []
        room = self.batch_size - max(len(read.entries) for read in reads)
        if room <= 0:
            return []
        return await self._read_slot(dict.fromkeys(self.streams, ">"), block=False, count=room)

    async def _finish_read_ahead(self, ahead: asyncio.Task[list[_Read]], stop: asyncio.Event) -> None:
        try:
            reads = await ahead
        except self.transient_errors as exc:
            self._log.warning("read-ahead failed; its entries stay pending", error=str(exc))
            return
        if reads:
            await self._process(reads, stop)

    async def _finish_in_flight(self, in_flight: InFlightReads[list[_Read]], stop: asyncio.Event) -> None:
        """Process what the other slots' reads still deliver: those entries are already ours."""
        try:
            results = await in_flight.settle()
        except self.transient_errors as exc:
            self._log.warning("slot reads failed; their entries stay pending", error=str(exc))
            return
        reads = [read for result in results for read in result]
        if reads:
            await self._process(reads, stop)

    async def _drain_pending(self, stop: asyncio.Event) -> None:
        """Re-read this consumer's own pending entries once each (after a restart or a failure)."""
        cursors = dict.fromkeys(self.streams, "0")
        while cursors and not stop.is_set():
            reads = [read for read in await self._read(cursors, block=False) if read.entries]
            if not reads:
                return
            cursors = {read.stream: _s(read.entries[-1][0]) for read in reads}
            await self._process(reads, stop, await self._delivery_counts(reads))

    async def _read(self, positions: dict[str, str], *, block: bool) -> list[_Read]:
        """One XREADGROUP on a single Redis; on a cluster, one per slot (blocking: see slot_reads.py)."""
        if not self.cluster:
            return await self._read_slot(positions, block=block)
        if block and self._in_flight is not None:
            return [read for result in await self._in_flight.next() for read in result]
        groups = [{s: positions[s] for s in group if s in positions} for group in self._slot_groups]
        results = await asyncio.gather(*(self._read_slot(g, block=block) for g in groups if g))
        return [read for result in results for read in result]

    async def _read_slot(
        self, positions: dict[str, str], *, block: bool, count: int | None = None
    ) -> list[_Read]:
        args: list[Any] = ["GROUP", self.group, self.consumer, "COUNT", count or self.batch_size]
        if block:
            args += ["BLOCK", self.block_ms]
        args += ["STREAMS", *positions.keys(), *positions.values()]
        response = await self._reader.execute_command("XREADGROUP", *args)
        # RESP3 answers with a map, RESP2 with a list of pairs.
        streams = response.items() if isinstance(response, dict) else (response or [])
        return [_Read(_s(stream), entries) for stream, entries in streams]

    async def _delivery_counts(self, reads: list[_Read]) -> dict[str, int]:
        """How often each re-read pending entry has been delivered (for the dead-letter limit)."""
        counts: dict[str, int] = {}
        for read in reads:
            pending = await self.redis.xpending_range(
                read.stream,
                self.group,
                min=_s(read.entries[0][0]),
                max=_s(read.entries[-1][0]),
                count=len(read.entries) + 10,
                consumername=self.consumer,
            )
            for p in pending:
                counts[_s(p["message_id"])] = int(p["times_delivered"])  # type: ignore[arg-type]
        return counts

    async def _claim_stale(self) -> bool:
        """Take over entries idle too long in dead consumers; True when anything was claimed."""
        claimed_any = False
        for stream in self.streams:
            response = await self.redis.xautoclaim(
                stream,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=self._claim_cursors[stream],
                count=self.batch_size,
                justid=True,
            )
            ids = response if isinstance(response, list) else []
            if ids:
                claimed_any = True
                self._log.info("claimed stale entries", stream=stream, count=len(ids))
            # A full page means more may follow: carry on after it next time; else start over.
            self._claim_cursors[stream] = "0-0" if len(ids) < self.batch_size else _s(ids[-1])
        return claimed_any

    async def _process(
        self, reads: list[_Read], stop: asyncio.Event, deliveries: dict[str, int] | None = None
    ) -> None:
        """Decode, dead-letter what cannot be handled, hand the rest to the handler, ack.

        `deliveries` holds the delivery counts of re-read pending entries; a fresh read's
        entries are delivered for the first time. A fresh read goes to `decode_read` whole, and
        entries in the producer's own field layout to `decode_flat`, without a dict per entry:
        at the writer's rates the per-entry bookkeeping cost more than storing the tick
        (bench/ingest.py).
        """
        started = time.perf_counter()
        good: list[Delivery[M]] = []
        dead: list[_Rejected] = []
        gone: list[tuple[str, str]] = []
        received = 0
        decode, decode_flat, decode_read = self.decode, self.decode_flat, self.decode_read
        # tuple.__new__ builds a Delivery in C; the NamedTuple's generated __new__ is Python and
        # cost twice as much, per entry.
        new = tuple.__new__
        for stream, entries in reads:
            received += len(entries)
            # A fresh read from a single Redis: bytes ids, flat lists, every entry delivered once.
            if decode_read is not None and deliveries is None and entries and type(entries[0][1]) is list:
                messages = decode_read(list(map(_FIELDS, entries)))
                if messages is not None and len(messages) == len(entries):
                    ids = map(bytes.decode, map(_ID, entries))
                    good += map(new, itertools.repeat(Delivery), zip(itertools.repeat(stream), ids, messages))
                    continue
            for entry_id, flat in entries:
                eid = _s(entry_id)
                count = 1 if deliveries is None else deliveries.get(eid, 1)
                if count > self.max_deliveries:
                    last = self._errors.pop(eid) or "unknown error"
                    reason = f"exceeded max deliveries ({self.max_deliveries}); last error: {last}"
                    dead.append(_Rejected(stream, eid, _fields_of(flat), count, reason))
                    continue
                try:
                    if decode_flat is not None and type(flat) is list:
                        message = decode_flat(flat)
                        if message is not None:
                            good.append(new(Delivery, (stream, eid, message)))
                            continue
                    fields = _fields_of(flat)
                    if fields is None:
                        gone.append((stream, eid))  # trimmed or deleted while pending: nothing left
                        continue
                    good.append(Delivery(stream, eid, decode(fields)))
                except MessageError as exc:
                    reason = f"invalid message: {exc.reason}"
                    dead.append(_Rejected(stream, eid, _fields_of(flat), count, reason))
        MESSAGES.labels(self.group, "received").inc(received)
        if dead:
            await self._dead_letter(dead)
        if gone:
            await self._ack(gone)
        if good:
            await self._handle(good, stop)
        elapsed = time.perf_counter() - started
        BATCH_SECONDS.labels(self.group).observe(elapsed)
        if self.emf is not None:
            self.emf.observe("ConsumerBatchLatency", elapsed, {"Group": self.group})

    async def _handle(self, batch: list[Delivery[M]], stop: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self.handler(batch)
                await self._ack(batch)
                MESSAGES.labels(self.group, "acked").inc(len(batch))
                LAST_PROCESSED.labels(self.group).set(time.time())
                self.heartbeat.recovered(self._liveness_key)
                return
            except self.transient_errors as exc:
                if stop.is_set():
                    # Leave the batch pending; the next start re-reads it from id 0.
                    self._log.warning("stopping with batch unacknowledged", size=len(batch), error=str(exc))
                    return
                delay = self._transient_failure(attempt)
                attempt += 1
                self._log.warning(
                    "transient handler error, retrying batch",
                    error=str(exc),
                    size=len(batch),
                    delay_s=round(delay, 3),
                )
                await sleep_or_stop(stop, delay)
            except Exception as exc:
                if len(batch) == 1:
                    entry = batch[0]
                    reason = f"{type(exc).__name__}: {exc}"
                    self._errors.remember(entry.id, reason)
                    MESSAGES.labels(self.group, "retried").inc()
                    self._log.warning(
                        "handler failed; entry stays pending", stream=entry.stream, id=entry.id, error=reason
                    )
                    self._schedule_retry()
                    return
                # Split: one poison entry must not hold back the rest of the batch.
                for delivery in batch:
                    await self._handle([delivery], stop)
                return

    def _transient_failure(self, attempt: int) -> float:
        """Keep the loop alive while retrying, but fail liveness once it has retried too long.

        A transient error that never clears (a wrong password, a firewall, a server that will
        not come back) would otherwise be retried forever behind a green /healthz.
        """
        self.heartbeat.beat()
        self.heartbeat.failing(self._liveness_key, self.stuck_after)
        return backoff_delay(attempt, self.retry_backoff_base, self.retry_backoff_cap)

    def _schedule_retry(self) -> None:
        if self._retry_pending_at is None:
            self._retry_pending_at = time.monotonic() + self.retry_delay

    async def _ack(self, entries: list[Delivery[M]] | list[tuple[str, str]]) -> None:
        """Acknowledge entries given as (stream, id, ...) tuples: deliveries or bare pairs."""
        by_stream: dict[str, list[str]]
        if len(self.streams) == 1:
            by_stream = {self.streams[0]: [entry[1] for entry in entries]}
        else:
            by_stream = {}
            for entry in entries:
                by_stream.setdefault(entry[0], []).append(entry[1])
        if self.cluster:
            # Per node: the cluster pipeline sends each stream's XACK to its slot's owner.
            async with self.redis.pipeline(transaction=False) as pipe:
                for stream, entry_ids in by_stream.items():
                    pipe.xack(stream, self.group, *entry_ids)
                await pipe.execute()
            return
        # Packed by hiredis in C: redis-py's pure-Python packing of thousands of ids per batch
        # cost more than the rest of the acknowledgement (see bench/ingest.py).
        payload = b"".join(
            hiredis.pack_command(("XACK", stream, self.group, *entry_ids))  # type: ignore[arg-type]
            for stream, entry_ids in by_stream.items()
        )
        pool = self.redis.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(payload)
            for _ in by_stream:
                reply = await conn.read_response()
                if isinstance(reply, ResponseError):
                    raise reply
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _dead_letter(self, items: list[_Rejected]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(
                    self.dead_stream,
                    dead_letter_fields(  # type: ignore[arg-type]
                        item.fields,
                        stream=item.stream,
                        entry_id=item.id,
                        group=self.group,
                        consumer=self.consumer,
                        error=item.reason,
                        deliveries=item.deliveries,
                    ),
                )
                pipe.xack(item.stream, self.group, item.id)
            await pipe.execute()
        MESSAGES.labels(self.group, "dead_lettered").inc(len(items))
        for item in items:
            self._log.warning("dead-lettered entry", stream=item.stream, id=item.id, reason=item.reason)

    async def update_lag_metrics(self) -> dict[str, dict[str, int]]:
        """Refresh lag and pending gauges; returns them per stream for callers like `stocktrack streams`."""
        result: dict[str, dict[str, int]] = {}
        for stream in self.streams:
            info = await group_info(self.redis, stream, self.group)
            if info is None:
                continue
            LAG.labels(self.group, stream).set(info["lag"])
            PENDING.labels(self.group, stream).set(info["pending"])
            result[stream] = info
        return result


async def group_info(redis: aioredis.Redis, stream: str, group: str) -> dict[str, int] | None:
    """Pending and lag of one group on one stream (lag as `stream_lag.group_lag` computes it)."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return None
    for g in groups:
        if _s(g["name"]) != group:
            continue
        lag = await group_lag(redis, stream, g)
        return {"pending": int(g["pending"]), "lag": lag.entries}
    return None


_ID, _FIELDS = operator.itemgetter(0), operator.itemgetter(1)


def _raw_reply(response: Any, **_: Any) -> Any:
    return response


def _fields_of(flat: Any) -> dict[bytes, bytes] | None:
    """An entry's fields as a dict, or None when the entry has none left (deleted while pending)."""
    if isinstance(flat, dict):
        return flat or None
    if not flat:
        return None
    # Pairs from one iterator: no two slice copies per entry.
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))
