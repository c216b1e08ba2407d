"""The EMF emitter must give CloudWatch distributions it can turn into correct percentiles."""

from __future__ import annotations

import asyncio
import io
import json
import math
import random

import pytest

from stocktrack_common.emf import MAX_VALUES_PER_LINE, EmfDistributions, EmfSettings


def _emitter(out: io.StringIO | None = None, relative_error: float = 0.02) -> EmfDistributions:
    return EmfDistributions(
        "Stocktrack", "api", 60.0, relative_error=relative_error, out=out, clock=lambda: 1_700_000_000.5
    )


def _percentile_from_distribution(values: list[float], counts: list[int], quantile: float) -> float:
    """Nearest-rank percentile over a Values/Counts pair, the way CloudWatch reads it."""
    total = sum(counts)
    rank = quantile * total
    seen = 0
    for value, count in sorted(zip(values, counts, strict=True)):
        seen += count
        if seen >= rank:
            return value
    raise AssertionError("rank beyond total")


def test_line_is_valid_emf_with_dimensions_and_timestamp() -> None:
    emf = _emitter()
    emf.observe("RequestLatency", 0.010, {"Route": "/v1/bars/{symbol}"})
    emf.observe("RequestLatency", 0.010, {"Route": "/v1/bars/{symbol}"})
    [line] = emf.render()
    assert line.startswith('{"_aws"'), "Fluent Bit routes EMF lines by this prefix"
    doc = json.loads(line)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert doc["_aws"]["Timestamp"] == 1_700_000_000_500
    assert directive["Namespace"] == "Stocktrack"
    assert directive["Dimensions"] == [["Service", "Route"]]
    assert directive["Metrics"] == [{"Name": "RequestLatency", "Unit": "Seconds"}]
    assert doc["Service"] == "api"
    assert doc["Route"] == "/v1/bars/{symbol}"
    assert doc["RequestLatency"]["Counts"] == [2]
    assert doc["RequestLatency"]["Values"][0] == pytest.approx(0.010, rel=0.02)


def test_separate_lines_per_dimension_set_and_state_is_drained() -> None:
    emf = _emitter()
    emf.observe("RequestLatency", 0.1, {"Route": "/a"})
    emf.observe("RequestLatency", 0.2, {"Route": "/b"})
    emf.observe("BatchSeconds", 0.3)
    docs = [json.loads(line) for line in emf.render()]
    assert sorted(
        (d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], d.get("Route")) for d in docs
    ) == [
        ("BatchSeconds", None),
        ("RequestLatency", "/a"),
        ("RequestLatency", "/b"),
    ]
    assert emf.render() == []


def test_p99_from_distribution_is_within_the_bucket_error() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-4.0, 1.2) for _ in range(20_000)]
    emf = _emitter(relative_error=0.02)
    for sample in samples:
        emf.observe("RequestLatency", sample)
    docs = [json.loads(line) for line in emf.render()]
    values = [v for d in docs for v in d["RequestLatency"]["Values"]]
    counts = [c for d in docs for c in d["RequestLatency"]["Counts"]]
    assert sum(counts) == len(samples)
    exact = sorted(samples)
    for quantile in (0.5, 0.9, 0.99):
        expected = exact[int(quantile * len(exact)) - 1]
        assert _percentile_from_distribution(values, counts, quantile) == pytest.approx(expected, rel=0.025)


def test_wide_distributions_split_into_lines_within_the_emf_limit() -> None:
    emf = _emitter(relative_error=0.01)
    for exponent in range(-600, 600):
        emf.observe("Spread", 10 ** (exponent / 200))
    docs = [json.loads(line) for line in emf.render()]
    assert len(docs) > 1
    assert all(len(d["Spread"]["Values"]) <= MAX_VALUES_PER_LINE for d in docs)
    assert sum(sum(d["Spread"]["Counts"]) for d in docs) == 1200


def test_zero_negative_and_non_finite_values() -> None:
    emf = _emitter()
    emf.observe("Lag", 0.0, unit="Count")
    emf.observe("Lag", -1.0, unit="Count")
    emf.observe("Lag", float("nan"), unit="Count")
    emf.observe("Lag", float("inf"), unit="Count")
    [doc] = [json.loads(line) for line in emf.render()]
    assert doc["Lag"] == {"Values": [0.0], "Counts": [2], "Max": 0.0, "Min": 0.0, "Count": 2, "Sum": 0.0}


def test_rejects_unknown_unit_unit_change_and_reserved_dimension() -> None:
    emf = _emitter()
    with pytest.raises(ValueError, match="unit"):
        emf.observe("X", 1.0, unit="Furlongs")
    emf.observe("X", 1.0, unit="Seconds")
    with pytest.raises(ValueError, match="already uses unit"):
        emf.observe("X", 1.0, unit="Milliseconds")
    with pytest.raises(ValueError, match="Service"):
        emf.observe("Y", 1.0, {"Service": "other"})
    with pytest.raises(ValueError, match="at most"):
        emf.observe("Z", 1.0, {f"d{i}": "v" for i in range(30)})


def test_flush_writes_lines_to_the_stream() -> None:
    out = io.StringIO()
    emf = _emitter(out)
    assert emf.flush() == 0
    emf.observe("RequestLatency", 0.5)
    assert emf.flush() == 1
    assert out.getvalue().endswith("\n")
    assert json.loads(out.getvalue())["RequestLatency"]["Counts"] == [1]


@pytest.mark.asyncio
async def test_run_flushes_periodically_and_once_more_on_stop() -> None:
    out = io.StringIO()
    emf = EmfDistributions("Stocktrack", "writer", 0.02, out=out)
    stop = asyncio.Event()
    task = asyncio.create_task(emf.run(stop))
    emf.observe("BatchSeconds", 0.1)
    await asyncio.sleep(0.1)
    assert len(out.getvalue().splitlines()) == 1
    emf.observe("BatchSeconds", 0.2)
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)
    assert len(out.getvalue().splitlines()) == 2


def test_settings_disable_by_default_and_build_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EmfDistributions.from_settings(EmfSettings(), "api") is None
    monkeypatch.setenv("EMF_ENABLED", "true")
    monkeypatch.setenv("EMF_NAMESPACE", "Custom")
    monkeypatch.setenv("EMF_FLUSH_INTERVAL_SECONDS", "15")
    built = EmfDistributions.from_settings(EmfSettings(), "api")
    assert built is not None
    assert (built.namespace, built.service, built.flush_interval) == ("Custom", "api", 15.0)


# The EMF specification's distribution form: Values and Counts (at most 100, same length) plus the
# statistic set Max, Min, Count and Sum that AWS's own producers (aws-embedded-metrics, the
# OpenTelemetry awsemfexporter) always send; CloudWatch reads SampleCount, Sum and Average from it.
DISTRIBUTION_KEYS = {"Values", "Counts", "Max", "Min", "Count", "Sum"}


def _check_distribution(dist: dict[str, object]) -> None:
    assert set(dist) == DISTRIBUTION_KEYS
    values, counts = dist["Values"], dist["Counts"]
    assert isinstance(values, list) and isinstance(counts, list)
    assert 1 <= len(values) == len(counts) <= MAX_VALUES_PER_LINE
    assert all(isinstance(c, int) and c > 0 for c in counts)
    assert all(isinstance(v, float) for v in values)
    count, total, low, high = dist["Count"], dist["Sum"], dist["Min"], dist["Max"]
    assert isinstance(count, int) and isinstance(total, float)
    assert isinstance(low, float) and isinstance(high, float)
    assert count == sum(counts)
    assert all(low <= v <= high for v in values)
    assert low * count <= total * (1 + 1e-12) and total <= high * count * (1 + 1e-12)


@pytest.mark.parametrize("spread", [1.5, 40.0])
def test_every_line_carries_the_statistic_set_and_split_lines_add_up(spread: float) -> None:
    rng = random.Random(7)
    observed = [rng.lognormvariate(-4.0, spread) for _ in range(5000)] + [0.0, -0.25]
    emf = _emitter()
    for value in observed:
        emf.observe("RequestLatency", value, {"Route": "/v1/quotes"})
    dists = [json.loads(line)["RequestLatency"] for line in emf.render()]
    for dist in dists:
        _check_distribution(dist)
    clamped = [max(v, 0.0) for v in observed]
    assert sum(d["Count"] for d in dists) == len(observed)
    assert sum(d["Sum"] for d in dists) == pytest.approx(math.fsum(clamped), rel=1e-9)
    assert min(d["Min"] for d in dists) == 0.0
    assert max(d["Max"] for d in dists) == max(clamped)
    if spread > 10:
        assert len(dists) > 1, "a wide distribution is split, and the parts still add up"


def test_the_statistic_set_is_exact_not_bucketed() -> None:
    emf = _emitter()
    for value in (0.0101, 0.0102, 0.0103):
        emf.observe("RequestLatency", value)
    [doc] = [json.loads(line) for line in emf.render()]
    dist = doc["RequestLatency"]
    assert dist["Count"] == 3
    assert dist["Sum"] == pytest.approx(0.0306, rel=1e-12)
    assert (dist["Min"], dist["Max"]) == (0.0101, 0.0103)
