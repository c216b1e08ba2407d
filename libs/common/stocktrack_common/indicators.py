"""Technical indicators (SMA, EMA, RSI, MACD), incremental and batch, with TA-Lib's conventions.

Two forms of each indicator, giving the same numbers:

* an incremental state machine (`SMA`, `EMA`, `RSI`, `MACD`): O(1) work per new value, and a
  JSON-safe `to_state()` / `from_state()` so a restarted recommender resumes where it stopped
  instead of replaying years of history;
* a batch function over a numpy array (`sma`, `ema`, `rsi`, `macd`), vectorised, used by the api,
  feature building and backtests.

Both follow TA-Lib's default ("classic") conventions exactly, so results can be checked against
it and users see the numbers their charting tools show:

* SMA(n): first value at index n-1.
* EMA(n): k = 2/(n+1), seeded with the SMA of the first n values; first value at index n-1.
* RSI(n): Wilder smoothing (k = 1/n) of gains and losses, seeded with the mean of the first n
  changes; first value at index n; RSI is 0 when average gain + loss is (near) zero.
* MACD(fast, slow, signal): the slow EMA starts at the first value, the fast EMA starts
  `slow - fast` values later so that both are first defined at index slow-1 (which is why MACD
  differs from EMA(fast) - EMA(slow) in the first bars); the signal is an EMA of MACD; all three
  outputs are reported from index slow + signal - 2 (33 for 12/26/9), like TA-Lib.

Batch outputs are float64 arrays with NaN where the indicator is not yet defined. Inputs must be
finite: a NaN would poison every later value of a recursive indicator, so it is rejected loudly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

# TA-Lib's TA_IS_ZERO threshold: RSI reports 0 when average gain + loss is below it.
_RSI_ZERO = 1e-8
# Block length of the blocked linear-recurrence solver; A**64 stays far from underflow for the
# smoothing factors used here, and a 64x64 matrix product per block keeps the work small.
_BLOCK = 64


class IndicatorStateError(ValueError):
    """A serialised indicator state that does not fit the indicator it is loaded into."""


def _check_period(name: str, period: int, minimum: int = 2) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {period!r}")
    return period


def _check_value(value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"indicator input must be finite, got {value!r}")
    return number


def _as_input(values: ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError("indicator input must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise ValueError("indicator input must be finite (no NaN or inf)")
    return array


def _expect_kind(state: dict[str, Any], kind: str) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise IndicatorStateError(f"state is not a {kind} state: {state!r:.200}")


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Incremental state machines
# ---------------------------------------------------------------------------------------------


class _Scalar:
    """The read side every single-valued indicator shares: `value` is None until warmed up."""

    _value: float | None

    @property
    def ready(self) -> bool:
        return self._value is not None

    @property
    def value(self) -> float | None:
        return self._value


class SMA(_Scalar):
    """Simple moving average over the last `period` values.

    Keeps the window in a ring buffer and, like TA-Lib, a running total of the newest period-1
    values: a new value is added, the average taken, then the value about to leave is subtracted.
    The total is recomputed exactly each time the ring wraps, so rounding error cannot drift over
    a stream of millions of values (amortised O(1): one extra addition per value).
    """

    __slots__ = ("_count", "_pos", "_total", "_value", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = _check_period("period", period)
        self._window: list[float] = [0.0] * period
        self._pos = 0
        self._count = 0
        self._total = 0.0
        self._value: float | None = None

    def update(self, value: float) -> float | None:
        """Add one value; returns the average once `period` values were seen, else None."""
        x = _check_value(value)
        self._window[self._pos] = x
        self._pos += 1
        if self._pos == self.period:
            self._pos = 0
        self._count += 1
        if self._count < self.period:
            self._total += x
            return None
        total = math.fsum(self._window) if self._pos == 0 else self._total + x
        self._total = total - self._window[self._pos]
        self._value = total / self.period
        return self._value

    def copy(self) -> SMA:
        """An independent copy: updating one leaves the other as it was."""
        twin = SMA.__new__(SMA)
        twin.period, twin._window, twin._pos = self.period, self._window.copy(), self._pos
        twin._count, twin._total, twin._value = self._count, self._total, self._value
        return twin

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "sma",
            "period": self.period,
            "window": list(self._window),
            "pos": self._pos,
            "count": self._count,
            "total": self._total,
            "value": self._value,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SMA:
        _expect_kind(state, "sma")
        sma = cls(int(state["period"]))
        window = [float(v) for v in state["window"]]
        if len(window) != sma.period:
            raise IndicatorStateError("sma window length does not match its period")
        sma._window = window
        sma._pos = int(state["pos"])
        sma._count = int(state["count"])
        sma._total = float(state["total"])
        sma._value = _optional_float(state["value"])
        return sma


class EMA(_Scalar):
    """Exponential moving average seeded with the SMA of the first `period` values (TA-Lib)."""

    __slots__ = ("_count", "_seed_sum", "_value", "k", "period")

    def __init__(self, period: int) -> None:
        self.period = _check_period("period", period, minimum=1)
        self.k = 2.0 / (period + 1)
        self._count = 0
        self._seed_sum = 0.0
        self._value: float | None = None

    def update(self, value: float) -> float | None:
        """Add one value; returns the EMA once `period` values were seen, else None."""
        return self._advance(_check_value(value))

    def _advance(self, x: float) -> float | None:
        """The update without input validation, for callers that validated already (MACD)."""
        if self._value is not None:
            self._value = ((x - self._value) * self.k) + self._value
            return self._value
        self._count += 1
        self._seed_sum += x
        if self._count == self.period:
            self._value = self._seed_sum / self.period
        return self._value

    def copy(self) -> EMA:
        """An independent copy: updating one leaves the other as it was."""
        twin = EMA.__new__(EMA)
        twin.period, twin.k, twin._count = self.period, self.k, self._count
        twin._seed_sum, twin._value = self._seed_sum, self._value
        return twin

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "ema",
            "period": self.period,
            "count": self._count,
            "seed_sum": self._seed_sum,
            "value": self._value,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EMA:
        _expect_kind(state, "ema")
        ema = cls(int(state["period"]))
        ema._count = int(state["count"])
        ema._seed_sum = float(state["seed_sum"])
        ema._value = _optional_float(state["value"])
        return ema


class RSI(_Scalar):
    """Relative strength index with Wilder smoothing, first value after `period` changes (TA-Lib)."""

    __slots__ = ("_changes", "_gain", "_loss", "_prev", "_value", "period")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("period", period)
        self._prev: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0
        self._value: float | None = None

    def update(self, value: float) -> float | None:
        """Add one value; returns the RSI once `period` changes were seen, else None."""
        x = _check_value(value)
        prev, self._prev = self._prev, x
        if prev is None:
            return None
        change = x - prev
        n = self.period
        if self._changes < n:
            self._changes += 1
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            if self._changes < n:
                return None
            self._loss /= n
            self._gain /= n
        else:
            self._loss *= n - 1
            self._gain *= n - 1
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            self._loss /= n
            self._gain /= n
        self._value = _rsi_from_averages(self._gain, self._loss)
        return self._value

    def copy(self) -> RSI:
        """An independent copy: updating one leaves the other as it was."""
        twin = RSI.__new__(RSI)
        twin.period, twin._prev, twin._changes = self.period, self._prev, self._changes
        twin._gain, twin._loss, twin._value = self._gain, self._loss, self._value
        return twin

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "rsi",
            "period": self.period,
            "prev": self._prev,
            "changes": self._changes,
            "gain": self._gain,
            "loss": self._loss,
            "value": self._value,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RSI:
        _expect_kind(state, "rsi")
        rsi = cls(int(state["period"]))
        rsi._prev = _optional_float(state["prev"])
        rsi._changes = int(state["changes"])
        rsi._gain = float(state["gain"])
        rsi._loss = float(state["loss"])
        rsi._value = _optional_float(state["value"])
        return rsi


def _rsi_from_averages(gain: float, loss: float) -> float:
    total = gain + loss
    return 100.0 * (gain / total) if abs(total) >= _RSI_ZERO else 0.0


@dataclass(frozen=True, slots=True)
class MACDValue:
    """One MACD output: the MACD line, its signal line and their difference (the histogram)."""

    macd: float
    signal: float
    histogram: float


class MACD:
    """MACD line, signal and histogram, seeded like TA-Lib.

    The fast EMA is fed from input index `slow - fast` onward, so its SMA seed covers the same
    last `fast` values at index slow-1 where the slow EMA's seed ends; that is TA-Lib's alignment.
    """

    __slots__ = (
        "_count",
        "_fast",
        "_signal",
        "_slow",
        "_value",
        "fast_period",
        "signal_period",
        "slow_period",
    )

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast_period = _check_period("fast", fast)
        self.slow_period = _check_period("slow", slow)
        self.signal_period = _check_period("signal", signal, minimum=1)
        if fast > slow:
            raise ValueError(f"MACD fast period must not be longer than slow, got {fast}/{slow}")
        self._count = 0
        self._fast = EMA(fast)
        self._slow = EMA(slow)
        self._signal = EMA(signal)
        self._value: MACDValue | None = None

    @property
    def lookback(self) -> int:
        """Index of the first output (33 for 12/26/9)."""
        return self.slow_period + self.signal_period - 2

    @property
    def ready(self) -> bool:
        return self._value is not None

    @property
    def value(self) -> MACDValue | None:
        return self._value

    def update(self, value: float) -> MACDValue | None:
        """Add one value; returns the MACD triple from index `lookback` on, else None."""
        x = _check_value(value)
        self._count += 1
        slow = self._slow._advance(x)
        if self._count <= self.slow_period - self.fast_period:
            return None
        fast = self._fast._advance(x)
        if fast is None or slow is None:
            return None
        line = fast - slow
        signal = self._signal._advance(line)
        if signal is None:
            return None
        self._value = MACDValue(line, signal, line - signal)
        return self._value

    def copy(self) -> MACD:
        """An independent copy: updating one leaves the other as it was."""
        twin = MACD.__new__(MACD)
        twin.fast_period, twin.slow_period = self.fast_period, self.slow_period
        twin.signal_period, twin._count, twin._value = self.signal_period, self._count, self._value
        twin._fast, twin._slow, twin._signal = self._fast.copy(), self._slow.copy(), self._signal.copy()
        return twin

    def to_state(self) -> dict[str, Any]:
        value = self._value
        return {
            "kind": "macd",
            "fast": self.fast_period,
            "slow": self.slow_period,
            "signal": self.signal_period,
            "count": self._count,
            "fast_ema": self._fast.to_state(),
            "slow_ema": self._slow.to_state(),
            "signal_ema": self._signal.to_state(),
            "value": None if value is None else [value.macd, value.signal, value.histogram],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MACD:
        _expect_kind(state, "macd")
        macd = cls(int(state["fast"]), int(state["slow"]), int(state["signal"]))
        macd._count = int(state["count"])
        macd._fast = EMA.from_state(state["fast_ema"])
        macd._slow = EMA.from_state(state["slow_ema"])
        macd._signal = EMA.from_state(state["signal_ema"])
        if (macd._fast.period, macd._slow.period, macd._signal.period) != (
            macd.fast_period,
            macd.slow_period,
            macd.signal_period,
        ):
            raise IndicatorStateError("macd inner EMA periods do not match its parameters")
        value = state["value"]
        macd._value = None if value is None else MACDValue(*(float(v) for v in value))
        return macd


# ---------------------------------------------------------------------------------------------
# Batch (vectorised) functions
# ---------------------------------------------------------------------------------------------


def _linear_recurrence(inputs: FloatArray, factor: float, initial: float) -> FloatArray:
    """Solve y[t] = factor * y[t-1] + inputs[t] with y[-1] = initial, vectorised.

    Every smoothing here (EMA, Wilder) is this first-order recurrence. Splitting the series into
    blocks of _BLOCK values turns each block into one small matrix product (the decaying weights
    are a lower-triangular Toeplitz matrix); the block-to-block carries form the same recurrence
    with factor**_BLOCK, solved the same way until few enough remain for a short loop. Blocks
    keep every weight within factor**_BLOCK, so the result matches the sequential loop to a few
    ulps instead of the catastrophic cancellation a single closed form would suffer.
    """
    n = inputs.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float64)
    if n <= _BLOCK:
        out = np.empty(n, dtype=np.float64)
        y = initial
        for i in range(n):
            y = factor * y + inputs[i]
            out[i] = y
        return out
    blocks = -(-n // _BLOCK)
    padded = np.zeros(blocks * _BLOCK, dtype=np.float64)
    padded[:n] = inputs
    matrix = padded.reshape(blocks, _BLOCK)
    lags = np.arange(_BLOCK)
    distance = lags[:, None] - lags[None, :]
    weights = np.where(distance >= 0, factor ** np.maximum(distance, 0), 0.0)
    local = matrix @ weights.T
    carry_decay = factor ** (lags + 1)
    block_ends = _linear_recurrence(local[:, -1], factor**_BLOCK, initial)
    carries = np.concatenate(([initial], block_ends[:-1]))
    result = local + carries[:, None] * carry_decay[None, :]
    return result.reshape(-1)[:n]


def sma(values: ArrayLike, period: int) -> FloatArray:
    """Simple moving average; NaN for the first period-1 positions.

    Window sums come from per-block prefix sums (block length = period): each window is a prefix
    of one block plus a suffix of the previous one, so no sum ever grows beyond one window and
    precision does not degrade with series length as a global cumsum would.
    """
    period = _check_period("period", period)
    x = _as_input(values)
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n < period:
        return out
    blocks = -(-n // period)
    padded = np.zeros(blocks * period, dtype=np.float64)
    padded[:n] = x
    prefix = np.cumsum(padded.reshape(blocks, period), axis=1)
    totals = prefix[:, -1]
    sums = np.empty_like(prefix)
    sums[0, :] = np.nan
    sums[0, -1] = totals[0]
    sums[1:, :-1] = prefix[1:, :-1] + (totals[:-1, None] - prefix[:-1, :-1])
    sums[1:, -1] = totals[1:]
    out[period - 1 :] = sums.reshape(-1)[period - 1 : n] / period
    return out


def ema(values: ArrayLike, period: int) -> FloatArray:
    """Exponential moving average seeded with the SMA of the first `period` values."""
    period = _check_period("period", period, minimum=1)
    return _ema_series(_as_input(values), period)


def _ema_series(x: FloatArray, period: int) -> FloatArray:
    k = 2.0 / (period + 1)
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < period:
        return out
    seed = 0.0
    for value in x[:period]:
        seed += float(value)
    seed /= period
    out[period - 1] = seed
    out[period:] = _linear_recurrence(k * x[period:], 1.0 - k, seed)
    return out


def rsi(values: ArrayLike, period: int = 14) -> FloatArray:
    """Wilder RSI; NaN for the first `period` positions."""
    period = _check_period("period", period)
    x = _as_input(values)
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n <= period:
        return out
    changes = np.diff(x)
    gains = np.where(changes > 0, changes, 0.0)
    losses = np.where(changes < 0, -changes, 0.0)
    seed_gain = 0.0
    seed_loss = 0.0
    for g, l_ in zip(gains[:period], losses[:period], strict=True):
        seed_gain += float(g)
        seed_loss += float(l_)
    seed_gain /= period
    seed_loss /= period
    factor = (period - 1) / period
    avg_gain = np.concatenate(([seed_gain], _linear_recurrence(gains[period:] / period, factor, seed_gain)))
    avg_loss = np.concatenate(([seed_loss], _linear_recurrence(losses[period:] / period, factor, seed_loss)))
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        values_out = np.where(np.abs(total) >= _RSI_ZERO, 100.0 * (avg_gain / total), 0.0)
    out[period:] = values_out
    return out


def macd(
    values: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal and histogram, each NaN before index slow + signal - 2 (TA-Lib).

    Equal periods are allowed, as in TA-Lib: the line is then zero wherever it is defined.
    """
    _check_period("fast", fast)
    _check_period("slow", slow)
    _check_period("signal", signal, minimum=1)
    if fast > slow:
        raise ValueError(f"MACD fast period must not be longer than slow, got {fast}/{slow}")
    x = _as_input(values)
    n = x.shape[0]
    line = np.full(n, np.nan)
    signal_line = np.full(n, np.nan)
    lookback = slow + signal - 2
    if n > lookback:
        slow_ema = _ema_series(x, slow)
        fast_ema = _ema_series(x[slow - fast :], fast)
        full_line = fast_ema[fast - 1 :] - slow_ema[slow - 1 :]
        full_signal = _ema_series(full_line, signal)
        line[lookback:] = full_line[signal - 1 :]
        signal_line[lookback:] = full_signal[signal - 1 :]
    return line, signal_line, line - signal_line
