"""Latency distributions for CloudWatch as Embedded Metric Format (EMF) log lines.

Why this exists: the CloudWatch agent's Prometheus scraper converts counters, gauges and
summaries but drops Prometheus histograms, so CloudWatch would never see a latency
percentile. Instead each service aggregates its latencies here and, every flush interval,
writes one EMF JSON line per (metric, dimensions) to stdout carrying a ``Values``/``Counts``
distribution with its exact ``Max``, ``Min``, ``Count`` and ``Sum`` (the statistic set that
AWS's own producers, aws-embedded-metrics and the OpenTelemetry awsemfexporter, always send:
CloudWatch takes Average, Sum and SampleCount from it, not from the bucketed values). Fluent Bit ships those lines to a log group with the ``json/emf`` format and
CloudWatch turns them into metrics with real p50/p99 statistics. Prometheus histograms stay
as they are for Grafana's ``histogram_quantile``.

Values are quantised into logarithmic buckets (about 2% relative error by default) so a busy
interval still fits EMF's limit of 100 distinct values per metric per line; when it does not,
the distribution is split over several lines, which CloudWatch merges.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stocktrack_common.lifecycle import sleep_or_stop

# EMF accepts at most 100 distinct values in one Values array.
MAX_VALUES_PER_LINE = 100
# EMF allows up to 30 dimensions in one dimension set.
MAX_DIMENSIONS = 30
# CloudWatch's standard units that a latency or size distribution may use.
ALLOWED_UNITS = frozenset(
    {"Seconds", "Milliseconds", "Microseconds", "Bytes", "Kilobytes", "Megabytes", "Count", "None"}
)

DimensionKey = tuple[tuple[str, str], ...]


class EmfSettings(BaseSettings):
    """Switches the chart sets when CloudWatch is in use; off by default so local runs stay quiet."""

    model_config = SettingsConfigDict(env_prefix="EMF_", extra="ignore", case_sensitive=False)

    enabled: bool = False
    namespace: str = Field(default="Stocktrack", min_length=1, max_length=255)
    flush_interval_seconds: float = Field(default=60.0, gt=0)
    relative_error: float = Field(default=0.02, gt=0, lt=0.5)


class _Bucket:
    """Observations that fell into one bucket: how many, their exact sum, smallest and largest."""

    __slots__ = ("count", "maximum", "minimum", "total")

    def __init__(self, value: float) -> None:
        self.count = 1
        self.total = value
        self.minimum = value
        self.maximum = value

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.minimum:
            self.minimum = value
        elif value > self.maximum:
            self.maximum = value


# Values at or below zero (clock steps) share one bucket reported as 0.
_ZERO = -(2**62)


@dataclass
class _Series:
    """Buckets of one metric with one dimension set since the last flush."""

    unit: str
    buckets: dict[int, _Bucket] = field(default_factory=dict)


class EmfDistributions:
    """Collects observations per (metric, dimensions) and writes them as EMF lines.

    ``observe`` is cheap (one log and one dict update under a lock) so it can sit on a hot
    path; the JSON work happens only in ``flush``. It is thread-safe because training and
    other CPU-bound work may run in executor threads.
    """

    def __init__(
        self,
        namespace: str,
        service: str,
        flush_interval: float = 60.0,
        *,
        relative_error: float = 0.02,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if not 0 < relative_error < 0.5:
            raise ValueError("relative_error must be in (0, 0.5)")
        self.namespace = namespace
        self.service = service
        self.flush_interval = flush_interval
        # A bucket [g^i, g^(i+1)) reported at its geometric middle is off by at most
        # sqrt(g) - 1, so choose g from the requested relative error.
        self._log_growth = math.log((1.0 + relative_error) ** 2)
        self._out = out
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[str, DimensionKey], _Series] = {}

    @classmethod
    def from_settings(cls, settings: EmfSettings, service: str) -> EmfDistributions | None:
        """Build an emitter when EMF is enabled, else None so callers can skip the flush task."""
        if not settings.enabled:
            return None
        return cls(
            settings.namespace,
            service,
            settings.flush_interval_seconds,
            relative_error=settings.relative_error,
        )

    def observe(
        self,
        metric: str,
        value: float,
        dims: Mapping[str, str] | None = None,
        unit: str = "Seconds",
    ) -> None:
        """Record one observation; negative values count as zero (clock steps can produce them)."""
        self.series(metric, dims, unit)(value)

    def series(
        self, metric: str, dims: Mapping[str, str] | None = None, unit: str = "Seconds"
    ) -> Callable[[float], None]:
        """`observe` for one (metric, dimensions), checked once: for a hot path to keep and call."""
        if unit not in ALLOWED_UNITS:
            raise ValueError(f"unsupported EMF unit {unit!r}")
        key = (metric, _dimension_key(dims))

        def observe(value: float) -> None:
            if not math.isfinite(value):
                return
            with self._lock:
                series = self._series.get(key)
                if series is None:
                    series = _Series(unit=unit)
                    self._series[key] = series
                elif series.unit != unit:
                    raise ValueError(f"metric {metric!r} already uses unit {series.unit!r}")
                if value <= 0.0:
                    value = 0.0
                    index = _ZERO
                else:
                    index = math.floor(math.log(value) / self._log_growth)
                bucket = series.buckets.get(index)
                if bucket is None:
                    series.buckets[index] = _Bucket(value)
                else:
                    bucket.add(value)

        return observe

    def render(self) -> list[str]:
        """Drain the collected distributions into EMF JSON lines (empty when nothing was observed)."""
        with self._lock:
            drained = self._series
            self._series = {}
        timestamp_ms = int(self._clock() * 1000)
        lines: list[str] = []
        for (metric, dim_key), series in sorted(drained.items()):
            buckets = sorted(series.buckets.items())
            for start in range(0, len(buckets), MAX_VALUES_PER_LINE):
                chunk = buckets[start : start + MAX_VALUES_PER_LINE]
                lines.append(self._line(metric, dim_key, series.unit, chunk, timestamp_ms))
        return lines

    def flush(self) -> int:
        """Write the pending distributions to stdout (or the injected stream); returns lines written."""
        lines = self.render()
        if not lines:
            return 0
        out = self._out if self._out is not None else sys.stdout
        out.write("".join(line + "\n" for line in lines))
        out.flush()
        return len(lines)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every interval until ``stop`` is set, then flush once more so nothing is lost."""
        while not stop.is_set():
            await sleep_or_stop(stop, self.flush_interval)
            self.flush()

    def _representative(self, index: int, bucket: _Bucket) -> float:
        """The bucket's geometric middle, kept inside the observed range so Min <= value <= Max."""
        if index == _ZERO:
            return 0.0
        middle = _round_significant(math.exp((index + 0.5) * self._log_growth))
        return min(max(middle, bucket.minimum), bucket.maximum)

    def _line(
        self,
        metric: str,
        dim_key: DimensionKey,
        unit: str,
        buckets: list[tuple[int, _Bucket]],
        timestamp_ms: int,
    ) -> str:
        dimension_names = ["Service", *(name for name, _ in dim_key)]
        # "_aws" goes first: the Fluent Bit config routes lines starting with {"_aws" to the
        # EMF log group, so the key order is part of the contract.
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [dimension_names],
                        "Metrics": [{"Name": metric, "Unit": unit}],
                    }
                ],
            },
            "Service": self.service,
        }
        document.update(dim_key)
        # Count and Sum describe exactly the observations behind this line's Values, so lines
        # of one split distribution add up.
        document[metric] = {
            "Values": [self._representative(index, bucket) for index, bucket in buckets],
            "Counts": [bucket.count for _, bucket in buckets],
            "Max": max(bucket.maximum for _, bucket in buckets),
            "Min": min(bucket.minimum for _, bucket in buckets),
            "Count": sum(bucket.count for _, bucket in buckets),
            "Sum": math.fsum(bucket.total for _, bucket in buckets),
        }
        return orjson.dumps(document).decode()


def _dimension_key(dims: Mapping[str, str] | None) -> DimensionKey:
    if not dims:
        return ()
    if len(dims) + 1 > MAX_DIMENSIONS:
        raise ValueError(f"EMF allows at most {MAX_DIMENSIONS} dimensions including Service")
    if "Service" in dims:
        raise ValueError("the Service dimension is set by the emitter")
    return tuple(sorted((str(name), str(value)) for name, value in dims.items()))


def _round_significant(value: float, digits: int = 6) -> float:
    """Trim float noise so lines stay short; six digits is far below the bucket error."""
    return float(f"{value:.{digits}g}")
