"""Everything the recommender remembers about one symbol, as one checkpointable object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from recommender.bar_builder import builder_from_checkpoint
from recommender.features import FeatureState
from recommender.rule_engine import RuleIndicators
from recommender.rules_config import RulesConfig
from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.stream_ids import parse_stream_id

STATE_VERSION = 2
DAY_MS = 86_400_000


@dataclass
class SymbolState:
    symbol: str
    bars: BarBuilder
    rules: RuleIndicators
    features: FeatureState
    # The day so far and the daily model's features: daily models see daily bars only.
    daily: BarBuilder = field(default_factory=lambda: BarBuilder(DAY_MS))
    daily_features: FeatureState = field(default_factory=FeatureState)
    # source -> [action, confidence bucket] of the last published signal: publish on change only.
    last_emitted: dict[str, list[Any]] = field(default_factory=dict)
    # Newest stream entry folded in; redeliveries at or below it are skipped (idempotent handler).
    last_id: str = "0-0"
    bars_closed: int = 0
    # The indicator states as JSON, kept until a bar changes them: every batch checkpoints each
    # symbol it touched, and re-serialising hundreds of indicator windows per batch was most of
    # the recommender's per-batch cost (py-spy under bench/soak.py).
    _indicator_json: dict[str, orjson.Fragment] | None = field(default=None, repr=False, compare=False)

    def indicators_changed(self) -> None:
        """Call after updating rules, features or daily_features: the cached JSON is stale."""
        self._indicator_json = None

    def checkpoint(self) -> bytes:
        """`to_state()` as JSON bytes, reusing the indicators' JSON while no bar changed them."""
        if self._indicator_json is None:
            self._indicator_json = {
                "rules": orjson.Fragment(orjson.dumps(self.rules.to_state())),
                "features": orjson.Fragment(orjson.dumps(self.features.to_state())),
                "daily_features": orjson.Fragment(orjson.dumps(self.daily_features.to_state())),
            }
        return orjson.dumps({**self._light_state(), **self._indicator_json})

    def seen(self, entry_id: str) -> bool:
        return parse_stream_id(entry_id) <= parse_stream_id(self.last_id)

    def to_state(self) -> dict[str, Any]:
        return {
            **self._light_state(),
            "rules": self.rules.to_state(),
            "features": self.features.to_state(),
            "daily_features": self.daily_features.to_state(),
        }

    def _light_state(self) -> dict[str, Any]:
        """Everything but the indicators: changes with every tick, cheap to serialise."""
        return {
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "interval_ms": self.bars.interval_ms,
            "bars": self.bars.to_state(),
            "daily": self.daily.to_state(),
            "last_emitted": self.last_emitted,
            "last_id": self.last_id,
            "bars_closed": self.bars_closed,
        }

    @classmethod
    def fresh(cls, symbol: str, interval_ms: int, config: RulesConfig, *, grace_ms: int = 0) -> SymbolState:
        return cls(symbol, BarBuilder(interval_ms, grace_ms=grace_ms), RuleIndicators(config), FeatureState())

    @classmethod
    def from_state(
        cls, state: dict[str, Any], interval_ms: int, config: RulesConfig, *, grace_ms: int = 0
    ) -> SymbolState:
        """Restore a checkpoint; raises (KeyError, ValueError) when it no longer fits the configuration."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown checkpoint version {state.get('version')!r}")
        if state.get("interval_ms") != interval_ms:
            raise ValueError(f"checkpoint built on {state.get('interval_ms')} ms bars, now {interval_ms} ms")
        return cls(
            symbol=str(state["symbol"]),
            bars=builder_from_checkpoint(interval_ms, state["bars"], grace_ms=grace_ms),
            rules=RuleIndicators.from_state(config, state["rules"]),
            features=FeatureState.from_state(state["features"]),
            daily=builder_from_checkpoint(DAY_MS, state["daily"]),
            daily_features=FeatureState.from_state(state["daily_features"]),
            last_emitted={str(k): list(v) for k, v in state["last_emitted"].items()},
            last_id=str(state["last_id"]),
            bars_closed=int(state["bars_closed"]),
        )
