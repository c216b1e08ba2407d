"""Training labels: the forward return over a horizon, cut into buy / hold / sell by thresholds.

Label at bar t uses the close at t + horizon, i.e. the future by design; that is why evaluation
keeps a gap of `horizon` bars between training and test data (see walk_forward).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

CLASSES: tuple[str, ...] = ("sell", "hold", "buy")


class LabelSpec(BaseModel):
    """How labels are made; stored with every model so predictions mean the same thing later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: int = Field(default=5, ge=1, le=250, description="bars ahead")
    buy_threshold: float = Field(default=0.02, gt=0.0, description="forward return above this is buy")
    sell_threshold: float = Field(default=-0.02, lt=0.0, description="forward return below this is sell")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.sell_threshold >= self.buy_threshold:
            raise ValueError("sell_threshold must be below buy_threshold")
        return self


def forward_returns(close: pd.Series, horizon: int) -> pd.Series:
    """close[t + horizon] / close[t] - 1; NaN for the last `horizon` rows."""
    return close.shift(-horizon) / close - 1.0


def make_labels(close: pd.Series, spec: LabelSpec) -> pd.Series:
    """buy / sell / hold per row; None where the horizon runs past the data."""
    forward = forward_returns(close, spec.horizon)
    labels = np.where(
        forward > spec.buy_threshold, "buy", np.where(forward < spec.sell_threshold, "sell", "hold")
    ).astype(object)
    labels[forward.isna().to_numpy()] = None
    return pd.Series(labels, index=close.index, name="label")
