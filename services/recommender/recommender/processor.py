"""Turns batches of ticks into closed bars, indicator updates and signals, per symbol.

For each tick shard batch: restore each symbol's state (memory, else checkpoint, else warm-up
from Postgres), fold the ticks into bars, and on each closed bar run the rule engine and, when a
model is active, the model. A signal is published for a source only when its action or
confidence bucket differs from the last one published, so subscribers see changes, not noise.
Signals and checkpoints leave in one MULTI/EXEC transaction at the end of the batch; the
consumer acks after. Nothing the batch did to a symbol's state is kept unless that transaction
succeeded: a failed batch drops the symbols it touched from memory, so the retry restores them
from the last checkpoint and derives (and publishes) the same signals again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

from recommender.bar_builder import bar_values
from recommender.checkpoint import CheckpointStore
from recommender.registry import LoadedModel
from recommender.rules import RuleEngine, confidence_bucket
from recommender.rules_config import RulesConfig
from recommender.symbol_state import SymbolState
from stocktrack_common.bars import Bar
from stocktrack_common.consumer import Delivery
from stocktrack_common.indicators import IndicatorStateError
from stocktrack_common.messages import Signal, Tick
from stocktrack_common.stream_names import signals_stream

log = structlog.get_logger(__name__)

SIGNALS = Counter("stocktrack_recommender_signals_total", "Signals published", ["source_kind", "action"])
BARS = Counter("stocktrack_recommender_bars_closed_total", "Bars closed from ticks")
LATE_TICKS = Counter("stocktrack_recommender_late_ticks_total", "Ticks older than the open bar, skipped")
REPLAYED_TICKS = Counter(
    "stocktrack_recommender_replayed_ticks_total",
    "Redelivered ticks already folded into the checkpointed state, skipped",
)
RESTORES = Counter(
    "stocktrack_recommender_state_restores_total", "Symbol states restored, by origin", ["origin"]
)

WarmupSource = Callable[[str, int], Awaitable[list[Bar]]]


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
    ) -> None:
        self.redis = redis
        self.signals_key = signals_stream(prefix)
        self.rules_config = rules_config
        self.engine = RuleEngine(rules_config)
        self.interval_ms = interval_ms
        self.checkpoints = checkpoints
        self.warmup = warmup
        self.model: LoadedModel | None = None
        self.states: dict[str, SymbolState] = {}

    async def handle(self, batch: list[Delivery[Tick]]) -> None:
        """The consumer's handler: idempotent, so a redelivered batch changes nothing twice.

        State advances only together with its outputs. The ticks are folded into the in-memory
        states first; should publishing fail (Redis down, a reply lost), those states are already
        past ticks whose signals never left, and a retry would skip the ticks as seen and lose
        the signals. So on any failure the touched symbols are forgotten and come back from the
        checkpoint, which the transaction writes only together with the signals.
        """
        touched: dict[str, SymbolState] = {}
        try:
            signals = await self._fold(batch, touched)
            async with self.redis.pipeline(transaction=True) as pipe:
                for signal in signals:
                    pipe.xadd(self.signals_key, signal.to_fields())  # type: ignore[arg-type]
                self.checkpoints.save_in(pipe, {s: st.to_state() for s, st in touched.items()})
                await pipe.execute()
        except BaseException:
            for symbol in touched:
                self.states.pop(symbol, None)
            raise
        for signal in signals:
            SIGNALS.labels("rules" if signal.source == "rules" else "model", signal.action).inc()

    async def _fold(self, batch: list[Delivery[Tick]], touched: dict[str, SymbolState]) -> list[Signal]:
        """Fold the batch's unseen ticks into their symbols' states; returns the signals of closed bars."""
        signals: list[Signal] = []
        for delivery in batch:
            tick = delivery.message
            state = touched.get(tick.symbol) or await self._state(tick.symbol, tick.ts)
            touched[tick.symbol] = state
            if state.seen(delivery.id):
                REPLAYED_TICKS.inc()
                continue
            state.last_id = delivery.id
            closed, used = state.bars.add(tick.ts, tick.price, tick.size)
            if not used:
                LATE_TICKS.inc()
            if closed is not None:
                signals.extend(self._on_bar(state, closed, publish=True))
        return signals

    async def _state(self, symbol: str, first_ts: int) -> SymbolState:
        state = self.states.get(symbol)
        if state is not None:
            return state
        saved = await self.checkpoints.load(symbol)
        if saved is not None:
            try:
                state = SymbolState.from_state(saved, self.interval_ms, self.rules_config)
                RESTORES.labels("checkpoint").inc()
            except (KeyError, ValueError, TypeError, IndicatorStateError) as exc:
                log.warning("checkpoint unusable, warming up from history", symbol=symbol, error=str(exc))
        if state is None:
            state = await self._warm_up(symbol, first_ts)
        self.states[symbol] = state
        return state

    async def _warm_up(self, symbol: str, first_ts: int) -> SymbolState:
        state = SymbolState.fresh(symbol, self.interval_ms, self.rules_config)
        bucket = state.bars.bucket_of(first_ts)
        history = await self.warmup(symbol, bucket)
        for bar in history:
            self._on_bar(state, bar, publish=False)
        if history:
            state.bars.closed_through_ms = history[-1].bucket
        RESTORES.labels("postgres" if history else "empty").inc()
        log.info("symbol warmed up", symbol=symbol, bars=len(history))
        return state

    def _on_bar(self, state: SymbolState, bar: Bar, *, publish: bool) -> list[Signal]:
        """Update indicators with a closed bar; returns the signals to publish (none during warm-up)."""
        state.bars_closed += 1
        if publish:
            BARS.inc()
        snapshot = state.rules.update(float(bar.close))
        features = state.features.update(bar_values(bar))
        if not publish:
            return []
        out: list[Signal] = []
        bar_info = {
            "bucket_ms": bar.bucket,
            "interval_ms": self.interval_ms,
            "open": str(bar.open),
            "high": str(bar.high),
            "low": str(bar.low),
            "close": str(bar.close),
            "volume": bar.volume,
            "trades": bar.trades,
        }
        decision = self.engine.decide(snapshot)
        if decision.ready:
            out.extend(
                self._maybe_signal(
                    state,
                    bar,
                    "rules",
                    decision.action,
                    decision.confidence,
                    {**decision.reasons(), "bar": bar_info},
                )
            )
        model = self.model
        if model is not None and features is not None:
            action, confidence, probabilities = model.predict(features)
            reasons = {
                "model_id": model.id,
                "probabilities": probabilities,
                "features": {k: round(v, 10) for k, v in features.items()},
                "rules": [f.rule for f in decision.fired],
                "indicators": snapshot.as_reasons(),
                "bar": bar_info,
            }
            source = f"model:{model.id}"
            for stale in [k for k in state.last_emitted if k.startswith("model:") and k != source]:
                del state.last_emitted[stale]  # a replaced model's memory would only grow the checkpoint
            out.extend(self._maybe_signal(state, bar, source, action, confidence, reasons))
        return out

    def _maybe_signal(
        self,
        state: SymbolState,
        bar: Bar,
        source: str,
        action: str,
        confidence: float,
        reasons: dict[str, Any],
    ) -> list[Signal]:
        bucket = confidence_bucket(confidence, self.rules_config.vote.confidence_buckets)
        if state.last_emitted.get(source) == [action, bucket]:
            return []
        state.last_emitted[source] = [action, bucket]
        return [
            Signal(
                symbol=state.symbol,
                ts=bar.bucket,
                price=Decimal(bar.close),
                action=action,  # type: ignore[arg-type]
                confidence=round(min(max(confidence, 0.0), 1.0), 6),
                source=source,
                reasons=reasons,
            )
        ]
