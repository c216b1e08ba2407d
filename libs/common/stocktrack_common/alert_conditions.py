"""Alert conditions: the JSON the api accepts for a rule and the alerts worker evaluates.

The api validates a rule's condition with these models and stores `model_dump(mode="json")` in
`alert_rules.condition`; the worker parses that column with the same models. One definition
means a rule the api accepts is one the worker can evaluate (tests/alerts/test_condition_contract.py
proves it). `extra="forbid"` keeps typos from becoming rules that silently never fire.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    WithJsonSchema,
)

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


def _level_pattern() -> str:
    """A price level written out: 1 to 12 digits before the point (no leading zero), up to 8
    after it, above zero. The one string form accepted, so the schema states it exactly."""
    fractions = [f"0{{{zeros}}}[1-9][0-9]{{0,{7 - zeros}}}" for zeros in range(8)]
    return rf"^([1-9][0-9]{{0,11}}(\.[0-9]{{1,8}})?|0\.({'|'.join(fractions)}))$"


LEVEL_PATTERN = _level_pattern()
_LEVEL = re.compile(LEVEL_PATTERN)
_LEVEL_STEP = Decimal("0.00000001")
MIN_LEVEL = 1e-8
MAX_LEVEL = 1e12  # exclusive: 12 digits before the point


def _level_input(value: Any) -> Any:
    """A decimal string in the one form of LEVEL_PATTERN, or a JSON number read at 8 places.

    A JSON number is a binary float: its digits past the 8th decimal are representation noise
    (0.1 + 0.2 = 0.30000000000000004), so they are cut off rather than refused; a client that
    means an exact level sends a string. Anything else (exponents, signs, leading zeros) is
    refused, so what the schema allows is exactly what is accepted.
    """
    if isinstance(value, str):
        if not _LEVEL.match(value):
            raise ValueError("a price level such as 150.25: digits, at most 8 after the point, above 0")
        return Decimal(value)
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value)).quantize(_LEVEL_STEP, rounding=ROUND_DOWN).normalize()
    return value


def _level_text(value: Decimal) -> str:
    """Plain notation (never 1E-8), the form LEVEL_PATTERN accepts when the worker reads it back."""
    return format(value, "f")


Level = Annotated[
    Decimal,
    BeforeValidator(_level_input),
    Field(gt=0, max_digits=20, decimal_places=8),
    PlainSerializer(_level_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": LEVEL_PATTERN},
                {"type": "number", "minimum": MIN_LEVEL, "exclusiveMaximum": MAX_LEVEL},
            ],
            "description": "a decimal string (exact), or a number (read at 8 decimal places)",
        },
        mode="validation",
    ),
    WithJsonSchema({"type": "string", "pattern": LEVEL_PATTERN}, mode="serialization"),
]


class PriceCrossCondition(_Condition):
    """Fires on the tick whose price crosses `level` from the previous tick's side."""

    type: Literal["price_cross"]
    level: Level
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
