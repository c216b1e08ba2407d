"""Turns batches of ticks into closed bars, indicator updates and signals, per symbol.

For each tick shard batch: restore each symbol's state (memory, else checkpoint, else warm-up
from Postgres), fold the ticks into bars, and on each closed bar run the rule engine and the
active model of that symbol and interval, if any. A rule bar closes at its end plus a small
grace (stocktrack_common.bar_closing): by a tick stamped that late, or by the close timer (`close_due`), so a
quiet symbol's signal does not wait for its next tick. A model only sees bars of the interval it was
trained on: besides the rules' bars (BAR_INTERVAL_SECONDS), every symbol keeps a live daily bar,
built from the same ticks and warmed up from `daily_bars`, for daily models. A daily model
signals when its day closes (the first tick of the next day), or, with
DAILY_SIGNALS=update, also on each rule bar with the day so far. A signal is published for a source only when its action or
confidence bucket differs from the last one published, so subscribers see changes, not noise.
Signals and checkpoints leave in one Lua script call, atomic like a transaction, at the end of the
batch (checkpoint.py); the consumer acks after. The close timer's calls carry each symbol's small
recent record instead of its full state (symbol_state.py): their latency is that of the signals;
the next batch of ticks writes the full states. At one bar end every symbol's bar closes, so the
timer computes the rules' part of each close ahead, at the bar end (`prepare_close`), and uses it
at the end of the grace where no tick changed the bar since; it sends its signals in calls of
CLOSE_PUBLISH_CHUNK signalling symbols as it goes (each symbol with its own checkpoint), and
feeds the model features of symbols without a model only after. Nothing the batch did to a symbol's state is kept unless that call
succeeded: a failed batch drops the symbols it touched from memory, so the retry restores them
from the last checkpoint and derives (and publishes) the same signals again.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

from recommender.bar_builder import bar_values
from recommender.checkpoint import CheckpointStore
from recommender.features import FeatureState
from recommender.model_registry import LoadedModel, interval_label
from recommender.rule_engine import Decision, IndicatorSnapshot, RuleEngine, RuleIndicators, confidence_bucket
from recommender.rules_config import RulesConfig
from recommender.symbol_state import DAILY_BAR, DAY_MS, INTERVAL_BAR, SymbolState
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.indicators import IndicatorStateError
from stocktrack_common.messages import Tick, signal_fields
from stocktrack_common.stream_names import signals_stream

log = structlog.get_logger(__name__)

SIGNALS = Counter("stocktrack_recommender_signals_total", "Signals published", ["source_kind", "action"])
BARS = Counter("stocktrack_recommender_bars_closed_total", "Bars closed from ticks")
LATE_TICKS = Counter(
    "stocktrack_recommender_late_ticks_total",
    "Ticks of a bar already closed (after its end plus BAR_CLOSE_GRACE_MS), skipped",
)
REPLAYED_TICKS = Counter(
    "stocktrack_recommender_replayed_ticks_total",
    "Redelivered ticks already folded into the checkpointed state, skipped",
)
RESTORES = Counter(
    "stocktrack_recommender_state_restores_total", "Symbol states restored, by origin", ["origin"]
)

WarmupSource = Callable[[str, int], Awaitable[list[Bar]]]
# The close timer writes recent records; past this many journalled bars a symbol's full state is
# written instead (only reached when no tick of the symbol arrives for that many bars).
TIMER_JOURNAL_LIMIT = 32
# Full states a call writes beyond those it must (never written, or a journal past
# TIMER_JOURNAL_LIMIT); the others write recent records and get theirs in a later call. A close
# adds a bar to every symbol's journal, and the next batch writing all 500 full states (~3.4 MB)
# held Redis for 11 ms (its slowlog), stalling every producer and reader in the meantime.
FULL_CHECKPOINTS_PER_CALL = 100
# Symbols prepared per turn of the event loop (prepare_close): tick batches get in between.
PREPARE_SLICE = 100
# Signalling symbols per script call of the close timer: Redis executes the first calls while the
# later ones are still being sent.
CLOSE_PUBLISH_CHUNK = 100
# Symbols warmed up from PostgreSQL at the same time (each holds a pool connection meanwhile).
WARMUP_CONCURRENCY = 4
DailySignals = Literal["close", "update"]
# A signal as it is published: its stream fields (stocktrack_common.messages.signal_fields).
SignalFields = dict[str, str]


def bar_fingerprint(bar: Bar) -> tuple[Any, ...]:
    """Everything a bar's close reads: a late tick changes at least its count and last time."""
    return (bar.bucket, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades, bar.last_ts)


@dataclass(frozen=True, slots=True)
class PreparedClose:
    """One symbol's bar close computed at the bar's end, for the close at the end of its grace."""

    state: SymbolState
    bars_closed: int
    fingerprint: tuple[Any, ...]
    rules: RuleIndicators
    snapshot: IndicatorSnapshot
    decision: Decision
    signal: SignalFields | None

    def fits(self, state: SymbolState, bar: Bar) -> bool:
        """Whether it was computed from this very state, with no bar applied since, for this bar as it is."""
        return (
            state is self.state
            and state.bars_closed == self.bars_closed
            and bar_fingerprint(bar) == self.fingerprint
        )


def _retrieve(call: asyncio.Future[None]) -> None:
    """Mark a close call's failure as seen: the close raises the first one, and forgets its states."""
    if not call.cancelled():
        call.exception()


class TickProcessor:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        prefix: str,
        rules_config: RulesConfig,
        interval_ms: int,
        checkpoints: CheckpointStore,
        warmup: WarmupSource,
        daily_warmup: WarmupSource | None = None,
        daily_signals: DailySignals = "close",
        grace_ms: int = 0,
        batch_limit: int | None = None,
    ) -> None:
        self.redis = redis
        self.signals_key = signals_stream(prefix)
        self.rules_config = rules_config
        self.engine = RuleEngine(rules_config)
        self.interval_ms = interval_ms
        self.checkpoints = checkpoints
        self.warmup = warmup
        self.daily_warmup = daily_warmup
        self.daily_signals = daily_signals
        self.grace_ms = grace_ms
        # The consumer's read size per stream: when every stream gave fewer, each was read to its
        # end, so the wall clock may close bars (ticks still to come are late). A full read means a
        # backlog, where only each symbol's own ticks close its bars: the shards are read side by
        # side but not in step, so a clock taken from other symbols' ticks would close bars early.
        self.batch_limit = batch_limit
        self.caught_up = True
        # The consumer's batches and the close timer change the same states: one at a time.
        self._lock = asyncio.Lock()
        self.interval = interval_label(interval_ms // 1000)
        # The rules' bars are daily already when BAR_INTERVAL_SECONDS is a day: no second builder.
        self.separate_daily = interval_ms != DAY_MS
        self.intervals: tuple[str, ...] = (self.interval, "1d") if self.separate_daily else ("1d",)
        self.models: tuple[LoadedModel, ...] = ()
        self.states: dict[str, SymbolState] = {}
        # The next timer close's work computed ahead, by symbol (prepare_close).
        self.prepared: dict[str, PreparedClose] = {}

    def model_for(self, symbol: str, interval: str) -> LoadedModel | None:
        """The active model for this symbol's bars of `interval`: its own scope first, else the universe's."""
        fitting = [m for m in self.models if m.applies_to(symbol, interval)]
        if not fitting:
            return None
        return min(fitting, key=lambda m: (m.symbols is None, len(m.symbols or ()), m.id))

    async def handle(self, batch: list[Delivery[Tick]]) -> None:
        """The consumer's handler: idempotent, so a redelivered batch changes nothing twice.

        State advances only together with its outputs. The ticks are folded into the in-memory
        states first; should publishing fail (Redis down, a reply lost), those states are already
        past ticks whose signals never left, and a retry would skip the ticks as seen and lose
        the signals. So on any failure the touched symbols are forgotten and come back from the
        checkpoint, which that call writes only together with the signals.
        """
        async with self._lock:
            touched: dict[str, SymbolState] = {}
            try:
                signals = await self._fold(batch, touched)
                await self._send(signals, touched)
            except BaseException:
                self._forget(touched)
                raise
            if self.batch_limit is not None:
                per_stream = collections.Counter(d.stream for d in batch)
                self.caught_up = max(per_stream.values(), default=0) < self.batch_limit

    async def prepare_close(self, due_ms: int, clock: Callable[[], float] = time.time) -> int:
        """At a bar end, compute ahead what the close at `due_ms` (that end plus grace) will need.

        For each symbol whose bar will close then (one bar, rules only: no model of this
        interval), the rules' update on a copy of its indicators, the verdict and the signal it
        would publish. The close uses them for every bar that is still exactly as it was (no
        late tick amended it, no tick closed it) and computes the rest itself, so most of a
        close's work is done while the grace runs instead of after it. PREPARE_SLICE symbols at
        a time, letting tick batches in between, and no further once the close is due: the
        close never waits for its preparation. Returns how many were prepared.
        """
        self.prepared = {}
        live_from = due_ms - 2 * self.interval_ms
        symbols = list(self.states)
        for start in range(0, len(symbols), PREPARE_SLICE):
            if clock() * 1000 >= due_ms:
                break
            async with self._lock:
                if not self.caught_up:
                    break
                for symbol in symbols[start : start + PREPARE_SLICE]:
                    state = self.states.get(symbol)
                    if state is None:
                        continue
                    closing = state.bars.due(due_ms, live_from)
                    if len(closing) == 1 and self.model_for(symbol, self.interval) is None:
                        self.prepared[symbol] = self._prepare(state, closing[0])
            await asyncio.sleep(0)
        return len(self.prepared)

    def _prepare(self, state: SymbolState, bar: Bar) -> PreparedClose:
        rules = state.rules.copy()
        snapshot = rules.update(float(bar.close))
        decision = self.engine.decide(snapshot)
        signal = None
        if decision.ready and self._new_verdict(state, "rules", decision.action, decision.confidence):
            reasons = self._rule_reasons(decision, bar)()
            signal = self._signal(state.symbol, bar, "rules", decision.action, decision.confidence, reasons)
        return PreparedClose(
            state, state.bars_closed, bar_fingerprint(bar), rules, snapshot, decision, signal
        )

    async def close_due(self, now_ms: int) -> int:
        """The close timer: close every live bar whose end plus grace has passed; returns how many.

        Only once the consumer is caught up (see `caught_up`), and only bars that ended within the
        last two intervals; meanwhile, and for older data (a backlog, a replay), ticks close bars.
        Signals and checkpoints leave together, as for a batch of ticks: each signal with the
        checkpoint of the symbol that produced it. The symbols whose prepared close
        (`prepare_close`) holds a signal close first and their signals leave at once, in calls of
        CLOSE_PUBLISH_CHUNK symbols that Redis works through while this process closes the rest;
        the signals of those follow, then the checkpoints of the quiet majority (verdicts seldom
        change) in a last call. Model features of symbols without a model advance after the
        signals are out (`settle_features`). A symbol whose checkpoint did not go out is
        forgotten, as on any failure.
        """
        async with self._lock:
            prepared, self.prepared = self.prepared, {}
            if not self.caught_up:
                return 0
            # Bars that ended more than two intervals ago are a backlog or a replay, not live.
            live_from = now_ms - 2 * self.interval_ms
            touched: dict[str, SymbolState] = {}
            calls: list[asyncio.Future[None]] = []
            sent: set[str] = set()
            first = [symbol for symbol, ahead in prepared.items() if ahead.signal is not None]
            try:
                for symbols in (first, list(self.states)):
                    signalling: dict[str, tuple[SymbolState, list[SignalFields]]] = {}
                    for symbol in symbols:
                        state = self.states.get(symbol)
                        if state is None or symbol in touched:
                            continue
                        closed = state.bars.close_due(now_ms, live_from)
                        if not closed:
                            continue
                        touched[symbol] = state
                        produced = self._on_closed(
                            state, closed, defer_features=True, prepared=prepared.get(symbol)
                        )
                        if produced:
                            signalling[symbol] = (state, produced)
                    if signalling:
                        calls.extend(await self._start_publish(signalling))
                        sent.update(signalling)
                await asyncio.gather(*calls)
                for state in touched.values():
                    state.settle_features()
                quiet = {s: st for s, st in touched.items() if s not in sent}
                if quiet:
                    await self._send([], quiet, journal_limit=TIMER_JOURNAL_LIMIT)
            except Exception:
                # The calls already sent finish first (each all or nothing), so none lands after
                # this returns; their symbols are forgotten below either way.
                await asyncio.gather(*calls, return_exceptions=True)
                self._forget(touched)
                raise
            except BaseException:
                for call in calls:
                    call.cancel()
                self._forget(touched)
                raise
            return len(touched)

    async def _start_publish(
        self, signalling: dict[str, tuple[SymbolState, list[SignalFields]]]
    ) -> list[asyncio.Future[None]]:
        """Send these symbols' signals and recent records, CLOSE_PUBLISH_CHUNK symbols a call; return the replies.

        The calls are all started before this yields, once, for them to write their commands:
        every turn of the loop also lets the consumer's read-ahead decode ticks.
        """
        calls: list[asyncio.Future[None]] = []
        chunk_signals: list[SignalFields] = []
        chunk: dict[str, SymbolState] = {}
        for symbol, (state, produced) in signalling.items():
            chunk[symbol] = state
            chunk_signals.extend(produced)
            if len(chunk) == CLOSE_PUBLISH_CHUNK:
                calls.append(self._call(chunk_signals, chunk))
                chunk_signals, chunk = [], {}
        if chunk:
            calls.append(self._call(chunk_signals, chunk))
        await asyncio.sleep(0)
        return calls

    def _call(self, signals: list[SignalFields], touched: dict[str, SymbolState]) -> asyncio.Future[None]:
        call = asyncio.ensure_future(self._send(signals, touched, TIMER_JOURNAL_LIMIT))
        call.add_done_callback(_retrieve)
        return call

    def _send(
        self, signals: list[SignalFields], touched: dict[str, SymbolState], journal_limit: int | None = None
    ) -> Awaitable[None]:
        """Build the script call's arguments at once (the states may change after); await to send it."""
        full: dict[str, bytes] = {}
        recent: dict[str, bytes] = {}
        optional = FULL_CHECKPOINTS_PER_CALL
        for symbol, state in touched.items():
            if state.needs_full_checkpoint(TIMER_JOURNAL_LIMIT):
                full[symbol] = state.checkpoint()
            elif optional and state.needs_full_checkpoint(journal_limit):
                full[symbol] = state.checkpoint()
                optional -= 1
            else:
                recent[symbol] = state.recent_record()
        return self._commit(signals, full, recent)

    async def _commit(
        self, signals: list[SignalFields], full: dict[str, bytes], recent: dict[str, bytes]
    ) -> None:
        await self.checkpoints.commit(self.signals_key, signals, full, recent)
        for signal in signals:
            SIGNALS.labels("rules" if signal["source"] == "rules" else "model", signal["action"]).inc()

    def _forget(self, touched: dict[str, SymbolState]) -> None:
        for symbol in touched:
            self.states.pop(symbol, None)

    def _on_closed(
        self,
        state: SymbolState,
        closed: list[Bar],
        *,
        defer_features: bool = False,
        prepared: PreparedClose | None = None,
    ) -> list[SignalFields]:
        signals: list[SignalFields] = []
        for bar in closed:
            signals.extend(
                self._on_bar(state, bar, publish=True, defer_features=defer_features, prepared=prepared)
            )
        if closed and self.separate_daily and self.daily_signals == "update":
            signals.extend(self._on_daily_update(state, closed[-1]))
        return signals

    async def _fold(self, batch: list[Delivery[Tick]], touched: dict[str, SymbolState]) -> list[SignalFields]:
        """Fold the batch's unseen ticks into their symbols' states; returns the signals of closed bars."""
        signals: list[SignalFields] = []
        await self._restore_missing(batch)
        for delivery in batch:
            tick = delivery.message
            state = touched.get(tick.symbol) or self.states[tick.symbol]
            touched[tick.symbol] = state
            if state.seen(delivery.id):
                REPLAYED_TICKS.inc()
                continue
            state.advance(delivery.id)
            closed, used = state.bars.add(tick.ts, tick.price, tick.size)
            if not used:
                LATE_TICKS.inc()
            for bar in closed:
                signals.extend(self._on_bar(state, bar, publish=True))
            if self.separate_daily:
                days, _ = state.daily.add(tick.ts, tick.price, tick.size)
                for day in days:
                    signals.extend(self._on_daily_bar(state, day, publish=True))
                if not days and closed and self.daily_signals == "update":
                    signals.extend(self._on_daily_update(state, closed[-1]))
        return signals

    async def _restore_missing(self, batch: list[Delivery[Tick]]) -> None:
        """Bring every symbol of the batch not in memory back: from its checkpoint, else warm it up.

        All at once: one read of the checkpoints for the batch's new symbols, then the warm-ups
        side by side (WARMUP_CONCURRENCY database reads at a time). A cold start meets hundreds
        of new symbols in its first batches; one at a time, each paid its own round trips to
        Redis and PostgreSQL while the backlog grew.
        """
        first_ts: dict[str, int] = {}
        for delivery in batch:
            symbol = delivery.message.symbol
            if symbol not in self.states and symbol not in first_ts:
                first_ts[symbol] = delivery.message.ts
        if not first_ts:
            return
        cold: list[str] = []
        for symbol, (saved, recent) in (await self.checkpoints.load_many(list(first_ts))).items():
            state = self._from_checkpoint(symbol, saved, recent)
            if state is None:
                cold.append(symbol)
            else:
                self.states[symbol] = state
        if not cold:
            return
        limit = asyncio.Semaphore(WARMUP_CONCURRENCY)

        async def warm(symbol: str) -> None:
            async with limit:
                self.states[symbol] = await self._warm_up(symbol, first_ts[symbol])

        async with asyncio.TaskGroup() as group:
            for symbol in cold:
                group.create_task(warm(symbol))

    def _from_checkpoint(
        self, symbol: str, saved: dict[str, Any] | None, recent: dict[str, Any] | None
    ) -> SymbolState | None:
        if saved is None:
            return None
        try:
            state = SymbolState.from_state(saved, self.interval_ms, self.rules_config, grace_ms=self.grace_ms)
            if recent is not None:
                state.apply_recent(recent, self.interval_ms, grace_ms=self.grace_ms)
        except (KeyError, ValueError, TypeError, IndicatorStateError) as exc:
            log.warning("checkpoint unusable, warming up from history", symbol=symbol, error=str(exc))
            return None
        RESTORES.labels("checkpoint").inc()
        return state

    async def _warm_up(self, symbol: str, first_ts: int) -> SymbolState:
        state = SymbolState.fresh(symbol, self.interval_ms, self.rules_config, grace_ms=self.grace_ms)
        bucket = state.bars.bucket_of(first_ts)
        history = await self.warmup(symbol, bucket)
        for bar in history:
            self._on_bar(state, bar, publish=False)
        if history:
            state.bars.closed_through_ms = history[-1].bucket
        days: list[Bar] = []
        if self.separate_daily and self.daily_warmup is not None:
            days = await self.daily_warmup(symbol, state.daily.bucket_of(first_ts))
            for day in days:
                self._on_daily_bar(state, day, publish=False)
            if days:
                state.daily.closed_through_ms = days[-1].bucket
        RESTORES.labels("postgres" if history or days else "empty").inc()
        log.info("symbol warmed up", symbol=symbol, bars=len(history), daily_bars=len(days))
        return state

    def _bar_info(self, bar: Bar, interval_ms: int) -> dict[str, Any]:
        return {
            "bucket_ms": bar.bucket,
            "interval_ms": interval_ms,
            "open": str(bar.open),
            "high": str(bar.high),
            "low": str(bar.low),
            "close": str(bar.close),
            "volume": bar.volume,
            "trades": bar.trades,
        }

    def _model_signal(
        self,
        state: SymbolState,
        model: LoadedModel,
        features: dict[str, float],
        bar: Bar,
        reasons: Callable[[], dict[str, Any]],
        signal_ts: int | None = None,
    ) -> list[SignalFields]:
        action, confidence, probabilities = model.predict(features)
        source = f"model:{model.id}"
        active = {f"model:{m.id}" for m in self.models}
        for stale in [k for k in state.last_emitted if k.startswith("model:") and k not in active]:
            del state.last_emitted[stale]  # a replaced model's memory would only grow the checkpoint

        def full() -> dict[str, Any]:
            return {
                "model_id": model.id,
                "interval": model.interval,
                "scope": model.scope,
                "probabilities": probabilities,
                "features": {k: round(v, 10) for k, v in features.items()},
                **reasons(),
            }

        return self._maybe_signal(state, bar, source, action, confidence, full, signal_ts)

    def _on_daily_bar(self, state: SymbolState, bar: Bar, *, publish: bool) -> list[SignalFields]:
        """A day closed: update the daily features and, when publishing, run the symbol's daily model."""
        features = state.apply_bar(DAILY_BAR, bar)
        model = self.model_for(state.symbol, "1d")
        if not publish or model is None or features is None:
            return []
        return self._model_signal(
            state, model, features, bar, lambda: {"day": "closed", "bar": self._bar_info(bar, DAY_MS)}
        )

    def _on_daily_update(self, state: SymbolState, closed: Bar) -> list[SignalFields]:
        """DAILY_SIGNALS=update: the daily model's verdict on the day so far, at each closed rule bar."""
        model = self.model_for(state.symbol, "1d")
        today = state.daily.current
        if model is None or today is None:
            return []
        provisional = FeatureState.from_state(state.daily_features.to_state())
        features = provisional.update(bar_values(today))
        if features is None:
            return []
        return self._model_signal(
            state,
            model,
            features,
            today,
            lambda: {"day": "forming", "bar": self._bar_info(today, DAY_MS)},
            signal_ts=closed.bucket,
        )

    def _on_bar(
        self,
        state: SymbolState,
        bar: Bar,
        *,
        publish: bool,
        defer_features: bool = False,
        prepared: PreparedClose | None = None,
    ) -> list[SignalFields]:
        """Update indicators with a closed bar; returns the signals to publish (none during warm-up).

        A `prepared` close (`prepare_close`) that still fits this state and bar stands in for
        the rules' update, verdict and signal, computed while the bar's grace ran.
        """
        model = self.model_for(state.symbol, self.interval) if publish else None
        ahead = prepared if publish and model is None and prepared and prepared.fits(state, bar) else None
        state.bars_closed += 1
        if publish:
            BARS.inc()
        if ahead is not None:
            state.apply_prepared_bar(bar, ahead.rules)
            snapshot, features, decision = ahead.snapshot, None, ahead.decision
        else:
            snapshot, features = state.apply_bar(
                INTERVAL_BAR, bar, want_features=model is not None, defer_features=defer_features
            )
            if not publish:
                return []
            decision = self.engine.decide(snapshot)
        out: list[SignalFields] = []
        if decision.ready:
            out.extend(
                self._maybe_signal(
                    state,
                    bar,
                    "rules",
                    decision.action,
                    decision.confidence,
                    self._rule_reasons(decision, bar),
                    prebuilt=None if ahead is None else ahead.signal,
                )
            )
        if model is not None and features is not None:
            out.extend(
                self._model_signal(
                    state,
                    model,
                    features,
                    bar,
                    lambda: {
                        "rules": [f.rule for f in decision.fired],
                        "indicators": snapshot.as_reasons(),
                        "bar": self._bar_info(bar, self.interval_ms),
                    },
                )
            )
        return out

    def _maybe_signal(
        self,
        state: SymbolState,
        bar: Bar,
        source: str,
        action: str,
        confidence: float,
        reasons: Callable[[], dict[str, Any]],
        signal_ts: int | None = None,
        prebuilt: SignalFields | None = None,
    ) -> list[SignalFields]:
        """The signal of this verdict when it differs from the last one published for `source`.

        Reasons are built only for a signal that is published: most bars repeat the verdict.
        """
        verdict = self._new_verdict(state, source, action, confidence)
        if verdict is None:
            return []
        state.last_emitted[source] = verdict
        if prebuilt is not None:
            return [prebuilt]
        return [self._signal(state.symbol, bar, source, action, confidence, reasons(), signal_ts)]

    def _new_verdict(
        self, state: SymbolState, source: str, action: str, confidence: float
    ) -> list[Any] | None:
        """[action, confidence bucket] when it differs from the last published for `source`, else None."""
        verdict = [action, confidence_bucket(confidence, self.rules_config.vote.confidence_buckets)]
        return None if state.last_emitted.get(source) == verdict else verdict

    @staticmethod
    def _signal(
        symbol: str,
        bar: Bar,
        source: str,
        action: str,
        confidence: float,
        reasons: dict[str, Any],
        signal_ts: int | None = None,
    ) -> SignalFields:
        return signal_fields(
            symbol=symbol,
            ts=bar.bucket if signal_ts is None else signal_ts,
            price=bar.close,
            action=action,
            confidence=round(min(max(confidence, 0.0), 1.0), 6),
            source=source,
            reasons=reasons,
        )

    def _rule_reasons(self, decision: Decision, bar: Bar) -> Callable[[], dict[str, Any]]:
        return lambda: {
            **decision.reasons(),
            "interval": self.interval,
            "bar": self._bar_info(bar, self.interval_ms),
        }
