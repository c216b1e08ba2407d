"""Wires the alerts worker: consumers of group 'alerts' (signals, owned tick shards) and the sender.

Stream handlers only evaluate rules and record alerts in the deliveries table before the
entries are acked; the sender delivers from that table on its own schedule. Tick conditions
keep per-symbol state, so each replica consumes only the tick shards it owns (settings.py).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import structlog
from prometheus_client import Counter

from alerts.condition_state import SymbolStateStore
from alerts.evaluator import PendingAlert, evaluate_signal, evaluate_tick
from alerts.outbox import record_alerts
from alerts.rsi_seed import seeded_rsi
from alerts.rule_book import RuleBook, RuleCache
from alerts.sender import DeliverySender
from alerts.settings import AlertsSettings, owned_shards
from stocktrack_common.bars import bucket_of
from stocktrack_common.consumer import Delivery
from stocktrack_common.messages import Signal, Tick, decode_tick
from stocktrack_common.runtime import WorkerContext, WorkerMain
from stocktrack_common.stream_names import ALERTS_GROUP, tick_stream
from stocktrack_common.webhook_targets import connector_kwargs

log = structlog.get_logger(__name__)

FIRED = Counter(
    "stocktrack_alerts_fired_total", "Alerts queued for delivery, by condition type", ["condition"]
)
STALE = Counter(
    "stocktrack_alerts_stale_events_total",
    "Events that matched a rule but were too old to alert on",
    ["condition"],
)


class AlertRecorder:
    """Keeps fresh alerts, drops stale ones, and writes them to the outbox in one statement."""

    def __init__(self, ctx: WorkerContext, sender: DeliverySender, max_age_ms: int) -> None:
        self.ctx = ctx
        self.sender = sender
        self.max_age_ms = max_age_ms

    async def record(self, alerts: list[PendingAlert]) -> None:
        now_ms = int(time.time() * 1000)
        fresh = []
        for alert in alerts:
            kind = str(alert.event["type"])
            if now_ms - alert.event_ts > self.max_age_ms:
                STALE.labels(kind).inc()
            else:
                fresh.append(alert)
        if not fresh:
            return
        async with self.ctx.db.connection() as conn:
            inserted = await record_alerts(conn, fresh)
        for alert in fresh:
            FIRED.labels(str(alert.event["type"])).inc()
        if inserted:
            self.sender.wake.set()


class TickHandler:
    def __init__(
        self, ctx: WorkerContext, rules: RuleCache, states: SymbolStateStore, recorder: AlertRecorder
    ) -> None:
        self.ctx = ctx
        self.rules = rules
        self.states = states
        self.recorder = recorder

    async def __call__(self, batch: list[Delivery[Tick]]) -> None:
        """Evaluate, record, then save the states; a failure anywhere keeps none of the batch's state.

        Evaluating moves each symbol's state past the batch's ticks. If recording or saving then
        fails, a retry against the moved state would see no crossing and lose the alerts, so
        the touched symbols are dropped from memory and reloaded from the last saved state.
        """
        book = await self.rules.current()
        alerts: list[PendingAlert] = []
        touched: set[str] = set()
        try:
            for delivery in batch:
                tick = delivery.message
                if not book.watches_ticks_of(tick.symbol):
                    continue
                touched.add(tick.symbol)
                await self._ensure_rsi(book, tick)
                alerts += evaluate_tick(book, self.states.cache[tick.symbol], tick)
            await self.recorder.record(alerts)
            await self.states.save(touched)
        except BaseException:
            self.states.forget(touched)
            raise

    async def _ensure_rsi(self, book: RuleBook, tick: Tick) -> None:
        state = await self.states.get(tick.symbol)
        missing = book.rsi_periods(tick.symbol) - state.rsi.keys()
        if not missing:
            return
        before = state.bar.bucket if state.bar is not None else bucket_of(tick.ts)
        async with self.ctx.db.connection() as conn:
            for period in missing:
                state.rsi[period] = await seeded_rsi(conn, tick.symbol, period, before)


def create_app(settings: AlertsSettings) -> WorkerMain:
    """Return the alerts worker's main loop; the worker runtime supplies Redis, the pool and stop."""

    shards = owned_shards(settings)

    async def main(ctx: WorkerContext) -> None:
        timeout = aiohttp.ClientTimeout(total=settings.alerts_http_timeout_seconds)
        connector = aiohttp.TCPConnector(**connector_kwargs(settings.alerts_allow_private_targets))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            sender = DeliverySender(
                ctx.db,
                session,
                allow_private=settings.alerts_allow_private_targets,
                max_attempts=settings.alerts_max_attempts,
                retry_base=settings.alerts_retry_base_seconds,
                retry_cap=settings.alerts_retry_max_seconds,
                poll_seconds=settings.alerts_sender_poll_seconds,
                concurrency=settings.alerts_sender_concurrency,
                lease_seconds=settings.alerts_http_timeout_seconds * 2 + 5,
            )
            rules = RuleCache(ctx.db, settings.alerts_rules_refresh_seconds)
            recorder = AlertRecorder(ctx, sender, int(settings.alerts_max_event_age_seconds * 1000))

            async def handle_signals(batch: list[Delivery[Signal]]) -> None:
                book = await rules.current()
                await recorder.record([a for d in batch for a in evaluate_signal(book, d.message)])

            signal_consumer = ctx.signal_consumer(
                settings.consumer, group=ALERTS_GROUP, handler=handle_signals
            )
            tick_handler = TickHandler(
                ctx, rules, SymbolStateStore(ctx.redis, settings.stream_prefix), recorder
            )
            tick_consumer = ctx.stream_consumer(
                settings.consumer,
                streams=[tick_stream(settings.stream_prefix, k) for k in shards],
                group=ALERTS_GROUP,
                handler=tick_handler,
                decode=decode_tick,
            )
            log.info("alerts consuming", shards=shards, consumer=settings.consumer_name)
            await asyncio.gather(
                signal_consumer.run(ctx.stop), tick_consumer.run(ctx.stop), sender.run(ctx.stop)
            )

    return main
