"""The rule engine: RSI, MACD-crossing and SMA-trend rules combined by a weighted vote.

The engine is a pure function of an `IndicatorSnapshot` (the indicator values at one closed bar
and, for crossings, at the bar before), so the streaming service, the training baseline and the
tests all run the very same decision code. `RuleIndicators` produces snapshots incrementally
from closing prices, with serialisable state for checkpoints.

The vote (also documented in default_rules.toml): every enabled rule whose indicators are ready
adds its weight to `available`; a rule that fires adds its weight to the buy or the sell side.
net = buy - sell; strength = |net| / available. The action is buy/sell by the sign of net when
strength exceeds `vote.min_strength`, else hold. Confidence is the strength for buy/sell, and
1 - (buy + sell) / available for hold, so a hold forced by conflicting rules is a weak hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from recommender.rules_config import RulesConfig
from stocktrack_common.indicators import MACD, RSI, SMA, IndicatorStateError

Action = Literal["buy", "sell", "hold"]


@dataclass(frozen=True, slots=True)
class IndicatorSnapshot:
    """Indicator values at one closed bar; None where an indicator is still warming up."""

    price: float
    rsi: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    prev_macd_hist: float | None = None
    sma_fast: float | None = None
    sma_slow: float | None = None
    prev_sma_fast: float | None = None
    prev_sma_slow: float | None = None

    def as_reasons(self) -> dict[str, float | None]:
        return {
            name: None if (v := getattr(self, name)) is None else round(v, 10) for name in _SNAPSHOT_FIELDS
        }

    def as_dict(self) -> dict[str, float | None]:
        """The fields by name (dataclasses.asdict deep-copies each one: slow on the bar-close path)."""
        return {name: getattr(self, name) for name in _SNAPSHOT_FIELDS}


_SNAPSHOT_FIELDS = tuple(f.name for f in fields(IndicatorSnapshot))


@dataclass(frozen=True, slots=True)
class FiredRule:
    rule: str
    vote: Literal["buy", "sell"]
    weight: float
    detail: str


@dataclass(frozen=True)
class Decision:
    """The engine's verdict for one bar, with everything needed to explain it."""

    action: Action
    confidence: float
    fired: tuple[FiredRule, ...] = ()
    snapshot: IndicatorSnapshot | None = None
    buy_weight: float = 0.0
    sell_weight: float = 0.0
    available_weight: float = 0.0
    rules_evaluated: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        """False while no rule had the data to vote (warm-up): such a decision is not published."""
        return self.available_weight > 0

    def reasons(self) -> dict[str, Any]:
        return {
            "rules": [
                {"rule": f.rule, "vote": f.vote, "weight": f.weight, "detail": f.detail} for f in self.fired
            ],
            "evaluated": list(self.rules_evaluated),
            "vote": {"buy": self.buy_weight, "sell": self.sell_weight, "available": self.available_weight},
            "indicators": self.snapshot.as_reasons() if self.snapshot else {},
        }


def confidence_bucket(confidence: float, buckets: int) -> int:
    """Which of `buckets` equal slices of 0..1 a confidence falls in (1.0 joins the top slice)."""
    return min(int(confidence * buckets), buckets - 1)


class RuleEngine:
    """Applies the configured rules to snapshots."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config

    def decide(self, snap: IndicatorSnapshot) -> Decision:
        cfg = self.config
        fired: list[FiredRule] = []
        evaluated: list[str] = []
        available = 0.0
        if cfg.rsi.enabled and snap.rsi is not None:
            evaluated.append("rsi")
            available += cfg.rsi.weight
            if snap.rsi < cfg.rsi.oversold:
                fired.append(
                    FiredRule(
                        "rsi_oversold",
                        "buy",
                        cfg.rsi.weight,
                        f"RSI({cfg.rsi.period}) {snap.rsi:.2f} < {cfg.rsi.oversold:g}",
                    )
                )
            elif snap.rsi > cfg.rsi.overbought:
                fired.append(
                    FiredRule(
                        "rsi_overbought",
                        "sell",
                        cfg.rsi.weight,
                        f"RSI({cfg.rsi.period}) {snap.rsi:.2f} > {cfg.rsi.overbought:g}",
                    )
                )
        if cfg.macd.enabled and snap.macd_hist is not None and snap.prev_macd_hist is not None:
            evaluated.append("macd")
            available += cfg.macd.weight
            if snap.prev_macd_hist <= 0.0 < snap.macd_hist:
                fired.append(
                    FiredRule("macd_cross_up", "buy", cfg.macd.weight, "MACD crossed above its signal line")
                )
            elif snap.prev_macd_hist >= 0.0 > snap.macd_hist:
                fired.append(
                    FiredRule(
                        "macd_cross_down", "sell", cfg.macd.weight, "MACD crossed below its signal line"
                    )
                )
        rule = self._sma_trend(snap, evaluated)
        if rule is not None:
            fired.append(rule)
        if "sma_trend" in evaluated:
            available += cfg.sma_trend.weight
        return self._vote(snap, fired, evaluated, available)

    def _sma_trend(self, snap: IndicatorSnapshot, evaluated: list[str]) -> FiredRule | None:
        cfg = self.config.sma_trend
        if not cfg.enabled or snap.sma_fast is None or snap.sma_slow is None:
            return None
        label = f"SMA({cfg.fast}) {snap.sma_fast:.4f} vs SMA({cfg.slow}) {snap.sma_slow:.4f}"
        if cfg.mode == "state":
            evaluated.append("sma_trend")
            if snap.sma_fast > snap.sma_slow:
                return FiredRule("sma_golden", "buy", cfg.weight, f"{label}: fast above slow")
            if snap.sma_fast < snap.sma_slow:
                return FiredRule("sma_death", "sell", cfg.weight, f"{label}: fast below slow")
            return None
        if snap.prev_sma_fast is None or snap.prev_sma_slow is None:
            return None
        evaluated.append("sma_trend")
        before = snap.prev_sma_fast - snap.prev_sma_slow
        now = snap.sma_fast - snap.sma_slow
        if before <= 0.0 < now:
            return FiredRule("sma_golden_cross", "buy", cfg.weight, f"{label}: golden cross")
        if before >= 0.0 > now:
            return FiredRule("sma_death_cross", "sell", cfg.weight, f"{label}: death cross")
        return None

    def _vote(
        self, snap: IndicatorSnapshot, fired: list[FiredRule], evaluated: list[str], available: float
    ) -> Decision:
        buy = sum(f.weight for f in fired if f.vote == "buy")
        sell = sum(f.weight for f in fired if f.vote == "sell")
        common = {
            "fired": tuple(fired),
            "snapshot": snap,
            "buy_weight": buy,
            "sell_weight": sell,
            "available_weight": available,
            "rules_evaluated": tuple(evaluated),
        }
        if available <= 0.0:
            return Decision("hold", 0.0, **common)  # type: ignore[arg-type]
        net = buy - sell
        strength = min(abs(net) / available, 1.0)
        if net != 0.0 and strength > self.config.vote.min_strength:
            return Decision("buy" if net > 0 else "sell", strength, **common)  # type: ignore[arg-type]
        return Decision("hold", max(0.0, 1.0 - (buy + sell) / available), **common)  # type: ignore[arg-type]


class RuleIndicators:
    """The indicators the rules read, updated once per closed bar, with checkpointable state."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.rsi = RSI(config.rsi.period)
        self.macd = MACD(config.macd.fast, config.macd.slow, config.macd.signal)
        self.sma_fast = SMA(config.sma_trend.fast)
        self.sma_slow = SMA(config.sma_trend.slow)
        self._prev: IndicatorSnapshot | None = None

    def update(self, close: float) -> IndicatorSnapshot:
        rsi = self.rsi.update(close)
        macd = self.macd.update(close)
        fast = self.sma_fast.update(close)
        slow = self.sma_slow.update(close)
        prev = self._prev
        snap = IndicatorSnapshot(
            price=float(close),
            rsi=rsi,
            macd=None if macd is None else macd.macd,
            macd_signal=None if macd is None else macd.signal,
            macd_hist=None if macd is None else macd.histogram,
            prev_macd_hist=None if prev is None else prev.macd_hist,
            sma_fast=fast,
            sma_slow=slow,
            prev_sma_fast=None if prev is None else prev.sma_fast,
            prev_sma_slow=None if prev is None else prev.sma_slow,
        )
        self._prev = snap
        return snap

    def copy(self) -> RuleIndicators:
        """An independent copy: the close timer updates one while the bar may still change."""
        twin = RuleIndicators.__new__(RuleIndicators)
        twin.config, twin._prev = self.config, self._prev
        twin.rsi, twin.macd = self.rsi.copy(), self.macd.copy()
        twin.sma_fast, twin.sma_slow = self.sma_fast.copy(), self.sma_slow.copy()
        return twin

    def to_state(self) -> dict[str, Any]:
        return {
            "rsi": self.rsi.to_state(),
            "macd": self.macd.to_state(),
            "sma_fast": self.sma_fast.to_state(),
            "sma_slow": self.sma_slow.to_state(),
            "prev": None if self._prev is None else self._prev.as_dict(),
        }

    @classmethod
    def from_state(cls, config: RulesConfig, state: dict[str, Any]) -> RuleIndicators:
        """Restore; raises IndicatorStateError when the saved periods differ from `config`'s."""
        restored = cls(config)
        restored.rsi = RSI.from_state(state["rsi"])
        restored.macd = MACD.from_state(state["macd"])
        restored.sma_fast = SMA.from_state(state["sma_fast"])
        restored.sma_slow = SMA.from_state(state["sma_slow"])
        expected = cls(config)
        if (
            restored.rsi.period,
            restored.macd.fast_period,
            restored.macd.slow_period,
            restored.macd.signal_period,
            restored.sma_fast.period,
            restored.sma_slow.period,
        ) != (
            expected.rsi.period,
            expected.macd.fast_period,
            expected.macd.slow_period,
            expected.macd.signal_period,
            expected.sma_fast.period,
            expected.sma_slow.period,
        ):
            raise IndicatorStateError("checkpointed indicator periods differ from the rules config")
        prev = state.get("prev")
        restored._prev = None if prev is None else IndicatorSnapshot(**prev)
        return restored
