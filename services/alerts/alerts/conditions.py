"""Alert conditions as stored in `alert_rules.condition`, and the crossing test they share.

The api validates the same JSON shape when a rule is registered; the worker parses it again
here because the table, not a shared import, is the contract between the two services. A
row that no longer parses (edited by hand) is skipped with a log line instead of stopping
every other rule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from stocktrack_common.messages import Signal

Direction = Literal["above", "below", "either"]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalCondition(_Condition):
    """Fires on a signal with one of `actions` from `source` ('model' matches every model)."""

    type: Literal["signal"]
    actions: tuple[Literal["buy", "sell", "hold"], ...] = Field(default=("buy", "sell"), min_length=1)
    source: str | None = Field(default=None, pattern=r"^(rules|model|model:[A-Za-z0-9_.\-]+)$")
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
    level: Decimal = Field(gt=0)
    direction: Direction = "either"


class RsiCrossCondition(_Condition):
    """Fires when RSI(period) of 1-minute closes crosses `threshold` at a minute's close."""

    type: Literal["rsi_cross"]
    threshold: float = Field(gt=0, lt=100)
    direction: Direction = "either"
    period: int = Field(default=14, ge=2, le=200)


Condition = Annotated[SignalCondition | PriceCrossCondition | RsiCrossCondition, Field(discriminator="type")]
CONDITION_ADAPTER: TypeAdapter[SignalCondition | PriceCrossCondition | RsiCrossCondition] = TypeAdapter(
    Condition
)


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
