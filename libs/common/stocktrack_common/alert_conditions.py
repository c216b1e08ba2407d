"""Alert conditions: the JSON the api accepts for a rule and the alerts worker evaluates.

The api validates a rule's condition with these models and stores `model_dump(mode="json")` in
`alert_rules.condition`; the worker parses that column with the same models. One definition
means a rule the api accepts is one the worker can evaluate (tests/alerts/test_condition_contract.py
proves it). `extra="forbid"` keeps typos from becoming rules that silently never fire.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from stocktrack_common.messages import Signal

Direction = Literal["above", "below", "either"]
SIGNAL_SOURCE_PATTERN = r"^(rules|model|model:[A-Za-z0-9_.\-]+)$"


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalCondition(_Condition):
    """Fires on a signal with one of `actions` from `source` ('model' matches every model)."""

    type: Literal["signal"]
    actions: tuple[Literal["buy", "sell", "hold"], ...] = Field(
        default=("buy", "sell"), min_length=1, max_length=3
    )
    source: str | None = Field(
        default=None,
        pattern=SIGNAL_SOURCE_PATTERN,
        description="rules, model (any model) or model:<id>; null for any source",
    )
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)

    def matches(self, signal: Signal) -> bool:
        if signal.action not in self.actions or signal.confidence < self.min_confidence:
            return False
        if self.source is None:
            return True
        if self.source == "model":
            return signal.source.startswith("model:")
        return signal.source == self.source


class PriceCrossCondition(_Condition):
    """Fires on the tick whose price crosses `level` from the previous tick's side."""

    type: Literal["price_cross"]
    level: Decimal = Field(gt=0, max_digits=20, decimal_places=8)
    direction: Direction = "either"


class RsiCrossCondition(_Condition):
    """Fires when RSI(period) of 1-minute closes crosses `threshold` at a minute's close."""

    type: Literal["rsi_cross"]
    threshold: float = Field(gt=0, lt=100)
    direction: Direction = "either"
    period: int = Field(default=14, ge=2, le=200, description="RSI period over 1-minute closes")


AnyCondition = SignalCondition | PriceCrossCondition | RsiCrossCondition
Condition = Annotated[AnyCondition, Field(discriminator="type")]
CONDITION_ADAPTER: TypeAdapter[AnyCondition] = TypeAdapter(Condition)


def crossing(
    previous: float | Decimal | None, current: float | Decimal, level: float | Decimal, direction: Direction
) -> Literal["above", "below"] | None:
    """Which way `current` crossed `level` coming from `previous`, if it did (touching counts)."""
    if previous is None:
        return None
    if previous < level <= current and direction in ("above", "either"):
        return "above"
    if previous > level >= current and direction in ("below", "either"):
        return "below"
    return None
