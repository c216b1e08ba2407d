"""The rule engine's configuration: a TOML file validated by pydantic.

Users tune thresholds, periods and weights by editing a file instead of code; validation at load
time turns a typo or an impossible setting (oversold above overbought, fast period not shorter
than slow) into a clear error before any signal is computed. The package ships
`default_rules.toml`, which documents every setting and the vote.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_RULES_FILE = "default_rules.toml"


class RulesConfigError(ValueError):
    """A rules file that cannot be read or does not validate."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    weight: float = Field(default=1.0, ge=0.0)


class RSIRule(_Section):
    period: int = Field(default=14, ge=2, le=1000)
    oversold: float = Field(default=30.0, gt=0.0, lt=100.0)
    overbought: float = Field(default=70.0, gt=0.0, lt=100.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.oversold >= self.overbought:
            raise ValueError("rsi.oversold must be below rsi.overbought")
        return self


class MACDRule(_Section):
    fast: int = Field(default=12, ge=2, le=1000)
    slow: int = Field(default=26, ge=3, le=1000)
    signal: int = Field(default=9, ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError("macd.fast must be shorter than macd.slow")
        return self


class SMATrendRule(_Section):
    fast: int = Field(default=50, ge=2, le=5000)
    slow: int = Field(default=200, ge=3, le=5000)
    mode: Literal["state", "cross"] = "state"
    weight: float = Field(default=0.5, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError("sma_trend.fast must be shorter than sma_trend.slow")
        return self


class VoteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_strength: float = Field(default=0.3, ge=0.0, lt=1.0)
    confidence_buckets: int = Field(default=4, ge=1, le=100)


class RulesConfig(BaseModel):
    """All rule settings; every section is optional and defaults to the shipped values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rsi: RSIRule = RSIRule()
    macd: MACDRule = MACDRule()
    sma_trend: SMATrendRule = SMATrendRule()
    vote: VoteConfig = VoteConfig()

    @model_validator(mode="after")
    def _something_votes(self) -> Self:
        rules = (self.rsi, self.macd, self.sma_trend)
        if not any(r.enabled and r.weight > 0 for r in rules):
            raise ValueError("at least one rule must be enabled with a positive weight")
        return self

    @property
    def warmup_bars(self) -> int:
        """Bars needed before every enabled rule can vote (and one more for crossings)."""
        needs = [1]
        if self.rsi.enabled:
            needs.append(self.rsi.period + 1)
        if self.macd.enabled:
            needs.append(self.macd.slow + self.macd.signal)
        if self.sma_trend.enabled:
            needs.append(self.sma_trend.slow + 1)
        return max(needs)


def parse_rules_config(text: str, source: str = "<text>") -> RulesConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise RulesConfigError(f"{source}: invalid rules config: {problems}") from exc


def load_rules_config(path: str | Path | None = None) -> RulesConfig:
    """Load a rules file, or the shipped default when `path` is None."""
    if path is None:
        text = resources.files("recommender").joinpath(DEFAULT_RULES_FILE).read_text(encoding="utf-8")
        return parse_rules_config(text, DEFAULT_RULES_FILE)
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesConfigError(f"cannot read rules config {file_path}: {exc}") from exc
    return parse_rules_config(text, str(file_path))
