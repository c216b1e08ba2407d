"""Indicators: incremental == batch == TA-Lib (the independent reference), to 1e-9, same NaN positions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib

from stocktrack_common import indicators as ind

TOLERANCE = 1e-9


def random_walk(seed: int, n: int, start: float = 100.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, scale, n)
    return np.abs(start + np.cumsum(steps)) + 0.01


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    valid = ~np.isnan(expected)
    if valid.any():
        assert np.max(np.abs(actual[valid] - expected[valid])) <= TOLERANCE


def run_incremental(machine: Any, values: np.ndarray, pick: Callable[[Any], float] = float) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    for i, value in enumerate(values):
        result = machine.update(float(value))
        if result is not None:
            out[i] = pick(result)
    return out


def test_talib_runs_with_its_default_conventions() -> None:
    assert talib.get_compatibility() == 0


SERIES = [
    pytest.param(random_walk(1, 3000), id="walk-3000"),
    pytest.param(random_walk(2, 500, start=5.0, scale=0.2), id="walk-low-price"),
    pytest.param(random_walk(3, 400, start=2000.0, scale=25.0), id="walk-high-price"),
    pytest.param(np.full(300, 42.5), id="constant"),
    pytest.param(np.linspace(10.0, 60.0, 300), id="rising"),
    pytest.param(np.linspace(60.0, 10.0, 300), id="falling"),
    pytest.param(np.tile([10.0, 11.0], 150), id="zigzag"),
]


@pytest.mark.parametrize("values", SERIES)
@pytest.mark.parametrize("period", [2, 5, 14, 50, 200])
def test_sma(values: np.ndarray, period: int) -> None:
    reference = talib.SMA(values, timeperiod=period)
    assert_same(ind.sma(values, period), reference)
    assert_same(run_incremental(ind.SMA(period), values), reference)


@pytest.mark.parametrize("values", SERIES)
@pytest.mark.parametrize("period", [2, 9, 12, 26, 100])
def test_ema(values: np.ndarray, period: int) -> None:
    reference = talib.EMA(values, timeperiod=period)
    assert_same(ind.ema(values, period), reference)
    assert_same(run_incremental(ind.EMA(period), values), reference)


@pytest.mark.parametrize("values", SERIES)
@pytest.mark.parametrize("period", [2, 6, 14, 30])
def test_rsi(values: np.ndarray, period: int) -> None:
    reference = talib.RSI(values, timeperiod=period)
    assert_same(ind.rsi(values, period), reference)
    assert_same(run_incremental(ind.RSI(period), values), reference)


@pytest.mark.parametrize("values", SERIES)
# Equal periods are allowed, as in TA-Lib: a zero line.
@pytest.mark.parametrize("params", [(12, 26, 9), (5, 35, 5), (2, 3, 1), (8, 17, 9), (26, 26, 9)])
def test_macd(values: np.ndarray, params: tuple[int, int, int]) -> None:
    fast, slow, signal = params
    reference = talib.MACD(values, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    batch = ind.macd(values, fast, slow, signal)
    for got, expected in zip(batch, reference, strict=True):
        assert_same(got, expected)
    for field, expected in zip(("macd", "signal", "histogram"), reference, strict=True):
        got = run_incremental(ind.MACD(fast, slow, signal), values, lambda v, f=field: getattr(v, f))
        assert_same(got, expected)


def test_macd_first_values_follow_talib_seeding_not_plain_ema_difference() -> None:
    values = random_walk(7, 200)
    line, signal, hist = ind.macd(values)
    assert np.isnan(line[32]) and not np.isnan(line[33])
    assert np.isnan(signal[32]) and not np.isnan(signal[33])
    plain = ind.ema(values, 12) - ind.ema(values, 26)
    assert abs(line[33] - plain[33]) > 1e-6
    np.testing.assert_allclose(hist, line - signal, equal_nan=True)


@pytest.mark.parametrize("n", [0, 1, 13, 14, 15, 25, 26, 33, 34])
def test_short_series_give_the_same_nan_positions(n: int) -> None:
    values = random_walk(11, n) if n else np.empty(0)
    assert_same(ind.sma(values, 14), talib.SMA(values, 14) if n else np.empty(0))
    assert_same(ind.ema(values, 14), talib.EMA(values, 14) if n else np.empty(0))
    assert_same(ind.rsi(values, 14), talib.RSI(values, 14) if n else np.empty(0))
    if n:
        for got, expected in zip(ind.macd(values), talib.MACD(values), strict=True):
            assert_same(got, expected)


def test_long_series_match_talib_across_many_recurrence_blocks() -> None:
    values = random_walk(5, 100_000)
    assert_same(ind.ema(values, 26), talib.EMA(values, 26))
    assert_same(ind.rsi(values, 14), talib.RSI(values, 14))
    assert_same(ind.sma(values, 200), talib.SMA(values, 200))
    for got, expected in zip(ind.macd(values), talib.MACD(values), strict=True):
        assert_same(got, expected)


def make_all() -> list[Any]:
    return [ind.SMA(20), ind.EMA(12), ind.RSI(14), ind.MACD(12, 26, 9)]


@pytest.mark.parametrize("split", [0, 1, 10, 14, 20, 30, 33, 34, 150])
def test_state_round_trips_through_json_and_resumes_identically(split: int) -> None:
    values = random_walk(13, 300)
    uninterrupted = make_all()
    resumed = make_all()
    expected = [[m.update(float(v)) for v in values] for m in uninterrupted]
    head = [[m.update(float(v)) for v in values[:split]] for m in resumed]
    restored = [type(m).from_state(json.loads(json.dumps(m.to_state(), allow_nan=False))) for m in resumed]
    tail = [[m.update(float(v)) for v in values[split:]] for m in restored]
    for full, first, rest in zip(expected, head, tail, strict=True):
        assert first + rest == full


def test_state_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ind.IndicatorStateError):
        ind.EMA.from_state(ind.SMA(5).to_state())
    state = ind.SMA(5).to_state()
    state["window"] = [1.0, 2.0]
    with pytest.raises(ind.IndicatorStateError):
        ind.SMA.from_state(state)


def test_non_finite_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        ind.EMA(3).update(float("nan"))
    with pytest.raises(ValueError):
        ind.rsi(np.array([1.0, np.inf, 2.0]), 2)


@pytest.mark.parametrize(
    "factory", [lambda: ind.SMA(1), lambda: ind.RSI(0), lambda: ind.MACD(26, 12, 9), lambda: ind.EMA(0)]
)
def test_invalid_periods_are_rejected(factory: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        factory()


def test_values_expose_the_last_result() -> None:
    machine = ind.RSI(2)
    assert machine.value is None and not machine.ready
    for value in (1.0, 2.0, 3.0):
        machine.update(value)
    assert machine.ready and machine.value == pytest.approx(100.0)


@pytest.mark.parametrize(
    "make",
    [lambda: ind.SMA(5), lambda: ind.EMA(4), lambda: ind.RSI(3), lambda: ind.MACD(3, 6, 2)],
    ids=["sma", "ema", "rsi", "macd"],
)
def test_a_copy_carries_every_value_and_goes_its_own_way(make: Any) -> None:
    """The recommender updates a copy while the original stays as it was (prepare_close)."""
    original = make()
    for i in range(12):
        original.update(100 + (i * 7) % 5)
    twin = original.copy()
    assert twin.to_state() == original.to_state()
    before = original.to_state()
    twin.update(120.0)
    assert original.to_state() == before
    original.update(120.0)
    assert twin.to_state() == original.to_state()
