"""Everything the recommender remembers about one symbol, as one checkpointable object.

Two checkpoint records (recommender/checkpoint.py): the full state, and a small "recent" record
on top of it: the state minus the indicators, plus the bars closed since the full state was
written (the journal). Restoring replays the journal through the same indicator updates, so both
give the same state. The close timer closes every symbol's bar at one instant, and writing 500
full states (about 9 KB of indicator windows each) in the script call that carries their signals
was most of the bar-close-to-signal latency; the recent record is a few hundred bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from recommender.bar_builder import bar_values, builder_from_checkpoint
from recommender.features import FeatureState
from recommender.rule_engine import RuleIndicators
from recommender.rules_config import RulesConfig
from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.bars import Bar
from stocktrack_common.stream_ids import parse_stream_id

STATE_VERSION = 2
RECENT_VERSION = 1
DAY_MS = 86_400_000
# Journal entry kinds: a bar of the rules' interval, or a daily bar.
INTERVAL_BAR = "i"
DAILY_BAR = "d"


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
    # Bars folded into the indicators since the full state was last written, oldest first.
    journal: list[tuple[str, Bar]] = field(default_factory=list, repr=False, compare=False)
    last_id_parsed: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)
    # Whether the full state in the checkpoint store is this state minus its journal.
    full_saved: bool = field(default=False, repr=False, compare=False)
    # Interval bars the rules have seen and the model features not yet (`apply_bar(defer_features=True)`).
    _unfeatured: list[Bar] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.last_id_parsed = parse_stream_id(self.last_id)

    def apply_bar(
        self, kind: str, bar: Bar, *, want_features: bool = False, defer_features: bool = False
    ) -> Any:
        """Fold a closed bar into the indicators (the one place they change) and journal it.

        Returns the rules' snapshot and the model features (None unless `want_features`) of an
        interval bar, the daily features of a daily bar. With `defer_features` (and no features
        wanted) the model features take the bar later, at `settle_features()`: the close timer's
        signals wait for the rules only, and a symbol without a model needs its features only
        for a model activated later. Whatever reads the features settles them first.
        """
        self._indicator_json = None
        self.journal.append((kind, bar))
        if kind == DAILY_BAR:
            return self.daily_features.update(bar_values(bar))
        snapshot = self.rules.update(float(bar.close))
        if defer_features and not want_features:
            self._unfeatured.append(bar)
            return snapshot, None
        self.settle_features()
        return snapshot, self.features.update(bar_values(bar), want=want_features)

    def apply_prepared_bar(self, bar: Bar, rules: RuleIndicators) -> None:
        """`apply_bar` of an interval bar with deferred features, whose rules update was made on `rules`, a copy."""
        self._indicator_json = None
        self.journal.append((INTERVAL_BAR, bar))
        self.rules = rules
        self._unfeatured.append(bar)

    def settle_features(self) -> None:
        """Bring the model features up to the rules: feed them the bars deferred, in order."""
        if self._unfeatured:
            for bar in self._unfeatured:
                self.features.update(bar_values(bar), want=False)
            self._unfeatured.clear()

    def needs_full_checkpoint(self, journal_limit: int | None = None) -> bool:
        """Whether the next checkpoint must be the full state rather than a recent record.

        Always when no full state of this one was written yet (a recent record extends one).
        Otherwise, with a `journal_limit`, only when the journal has grown past it; without one,
        whenever a bar changed the indicators since.
        """
        if not self.full_saved:
            return True
        if journal_limit is not None:
            return len(self.journal) > journal_limit
        return bool(self.journal)

    def checkpoint(self) -> bytes:
        """`to_state()` as JSON bytes, reusing the indicators' JSON while no bar changed them."""
        if self._indicator_json is None:
            self.settle_features()
            self._indicator_json = {
                "rules": orjson.Fragment(orjson.dumps(self.rules.to_state())),
                "features": orjson.Fragment(orjson.dumps(self.features.to_state())),
                "daily_features": orjson.Fragment(orjson.dumps(self.daily_features.to_state())),
            }
        self.journal.clear()
        self.full_saved = True
        return orjson.dumps({**self._light_state(), **self._indicator_json})

    def recent_record(self) -> bytes:
        """The state minus the indicators, plus the journal: what restores this state on top of the full one."""
        return orjson.dumps(
            {
                **self._light_state(),
                "version": RECENT_VERSION,
                "journal": [[kind, bar.to_state()] for kind, bar in self.journal],
            }
        )

    def seen(self, entry_id: str) -> bool:
        return parse_stream_id(entry_id) <= self.last_id_parsed

    def advance(self, entry_id: str) -> None:
        self.last_id = entry_id
        self.last_id_parsed = parse_stream_id(entry_id)

    def to_state(self) -> dict[str, Any]:
        self.settle_features()
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
        restored = cls(
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
        restored.full_saved = True
        return restored

    def apply_recent(self, recent: dict[str, Any], interval_ms: int, *, grace_ms: int = 0) -> None:
        """Bring a state restored from the full checkpoint up to its recent record (raises if unusable)."""
        if recent.get("version") != RECENT_VERSION or recent.get("interval_ms") != interval_ms:
            raise ValueError("recent record does not fit this configuration")
        if recent.get("symbol") != self.symbol:
            raise ValueError("recent record of another symbol")
        for kind, bar in recent["journal"]:
            self.apply_bar(str(kind), Bar.from_state(bar))
        self.bars = builder_from_checkpoint(interval_ms, recent["bars"], grace_ms=grace_ms)
        self.daily = builder_from_checkpoint(DAY_MS, recent["daily"])
        self.last_emitted = {str(k): list(v) for k, v in recent["last_emitted"].items()}
        self.advance(str(recent["last_id"]))
        self.bars_closed = int(recent["bars_closed"])
