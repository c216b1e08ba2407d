"""Model features from bars, computed causally: the features of bar t use bars up to t only.

One incremental implementation (`FeatureState`) serves both training and the live service:
`build_features` simply runs it over a history, so the numbers a model was trained on are the
numbers it sees in production, and look-ahead is impossible by construction (a state machine
cannot read a bar it has not been given). Everything is scale-free (normalised by price or
expressed as returns / z-scores) so one model serves symbols at any price level.

Features (FEATURE_NAMES, in model input order):
- rsi_14: RSI(14) / 100
- macd_norm, macd_signal_norm, macd_hist_norm: MACD(12, 26, 9) outputs / close
- ret_1, ret_5, ret_10, ret_20: log returns over 1, 5, 10, 20 bars
- volatility_20: standard deviation of the last 20 one-bar log returns
- volume_z_20: z-score of log(1 + volume) against the previous 20 bars
- dist_sma50, dist_sma200: close / SMA - 1
- sma50_vs_sma200: SMA(50) / SMA(200) - 1
- range_norm: (high - low) / close
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from stocktrack_common.indicators import MACD, RSI, SMA

FEATURE_NAMES: tuple[str, ...] = (
    "rsi_14",
    "macd_norm",
    "macd_signal_norm",
    "macd_hist_norm",
    "ret_1",
    "ret_5",
    "ret_10",
    "ret_20",
    "volatility_20",
    "volume_z_20",
    "dist_sma50",
    "dist_sma200",
    "sma50_vs_sma200",
    "range_norm",
)
RETURN_LAGS = (1, 5, 10, 20)
VOLATILITY_WINDOW = 20
VOLUME_WINDOW = 20
# Bars before the first complete feature vector: SMA(200) is the longest memory.
WARMUP_BARS = 200


@dataclass(frozen=True, slots=True)
class BarValues:
    """The OHLCV of one closed bar, as floats (prices split-adjusted where history needs it)."""

    open: float
    high: float
    low: float
    close: float
    volume: float


class FeatureState:
    """Per-symbol incremental feature computation with JSON-safe state."""

    def __init__(self) -> None:
        self.rsi = RSI(14)
        self.macd = MACD(12, 26, 9)
        self.sma50 = SMA(50)
        self.sma200 = SMA(200)
        self.closes: deque[float] = deque(maxlen=max(RETURN_LAGS) + 1)
        self.log_volumes: deque[float] = deque(maxlen=VOLUME_WINDOW)

    def update(self, bar: BarValues, *, want: bool = True) -> dict[str, float] | None:
        """Feed one closed bar; returns its feature vector once every feature is defined.

        With `want=False` the state advances but no vector is built (None): the recommender
        keeps every symbol's features current for a model that may be activated later, but
        builds the vector only for a symbol that has one.
        """
        close = bar.close
        rsi = self.rsi.update(close)
        macd = self.macd.update(close)
        sma50 = self.sma50.update(close)
        sma200 = self.sma200.update(close)
        self.closes.append(close)
        log_volume = math.log1p(max(bar.volume, 0.0))
        volumes_ready = len(self.log_volumes) >= VOLUME_WINDOW
        history = list(self.log_volumes) if want and volumes_ready else []
        self.log_volumes.append(log_volume)
        if (
            not want
            or rsi is None
            or macd is None
            or sma50 is None
            or sma200 is None
            or len(self.closes) <= max(RETURN_LAGS)
            or not volumes_ready
        ):
            return None
        # Plain floats, not numpy: on 21 values numpy's per-call overhead was most of a bar
        # close's cost, and the recommender closes every symbol's bar at the same instant.
        log_closes = [math.log(c) for c in self.closes]
        one_bar = [b - a for a, b in pairwise(log_closes)][-VOLATILITY_WINDOW:]
        features = {
            "rsi_14": rsi / 100.0,
            "macd_norm": macd.macd / close,
            "macd_signal_norm": macd.signal / close,
            "macd_hist_norm": macd.histogram / close,
            **{f"ret_{lag}": log_closes[-1] - log_closes[-1 - lag] for lag in RETURN_LAGS},
            "volatility_20": _std(one_bar),
            "volume_z_20": _zscore(log_volume, history),
            "dist_sma50": close / sma50 - 1.0,
            "dist_sma200": close / sma200 - 1.0,
            "sma50_vs_sma200": sma50 / sma200 - 1.0,
            "range_norm": (bar.high - bar.low) / close,
        }
        return features

    def to_state(self) -> dict[str, Any]:
        return {
            "rsi": self.rsi.to_state(),
            "macd": self.macd.to_state(),
            "sma50": self.sma50.to_state(),
            "sma200": self.sma200.to_state(),
            "closes": list(self.closes),
            "log_volumes": list(self.log_volumes),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureState:
        restored = cls()
        restored.rsi = RSI.from_state(state["rsi"])
        restored.macd = MACD.from_state(state["macd"])
        restored.sma50 = SMA.from_state(state["sma50"])
        restored.sma200 = SMA.from_state(state["sma200"])
        restored.closes.extend(float(v) for v in state["closes"])
        restored.log_volumes.extend(float(v) for v in state["log_volumes"])
        return restored


def _std(values: Sequence[float]) -> float:
    """Population standard deviation (numpy's np.std, ddof=0), with exactly rounded sums."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def _zscore(value: float, history: Sequence[float]) -> float:
    spread = _std(history)
    return 0.0 if spread <= 1e-12 else (value - math.fsum(history) / len(history)) / spread


def build_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Feature rows for one symbol's bars (columns open, high, low, close, volume; ordered by time).

    Returns a frame on the same index, NaN during warm-up. Rows are computed one after the other
    by the same FeatureState the live service uses.
    """
    state = FeatureState()
    rows: list[dict[str, float] | None] = []
    for o, h, lo, c, v in zip(
        bars["open"].to_numpy(float),
        bars["high"].to_numpy(float),
        bars["low"].to_numpy(float),
        bars["close"].to_numpy(float),
        bars["volume"].to_numpy(float),
        strict=True,
    ):
        rows.append(state.update(BarValues(o, h, lo, c, v)))
    nan_row = dict.fromkeys(FEATURE_NAMES, np.nan)
    return pd.DataFrame(
        [r if r is not None else nan_row for r in rows], index=bars.index, columns=list(FEATURE_NAMES)
    )
