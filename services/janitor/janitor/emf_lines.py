"""Janitor metrics as CloudWatch Embedded Metric Format lines on stdout.

A CronJob pod lives for seconds, too short to be scraped, so its metrics leave the way its
logs do: one JSON line per task (and per stream), which Fluent Bit routes to the EMF log group
because it starts with {"_aws". These are plain values (a count, a duration, a timestamp), not
the latency distributions of stocktrack_common.emf, whose bucketing would blur a Unix
timestamp by weeks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import orjson

from stocktrack_common.emf import ALLOWED_UNITS, MAX_DIMENSIONS

# EMF allows at most 100 metrics in one directive.
MAX_METRICS_PER_LINE = 100


def emf_line(
    namespace: str,
    service: str,
    dims: Mapping[str, str],
    metrics: Mapping[str, tuple[float, str]],
    timestamp_ms: int,
) -> str:
    """One EMF document: `metrics` maps a name to (value, unit); every dimension is a top-level key."""
    if len(dims) + 1 > MAX_DIMENSIONS:
        raise ValueError(f"EMF allows at most {MAX_DIMENSIONS} dimensions including Service")
    if len(metrics) > MAX_METRICS_PER_LINE:
        raise ValueError(f"EMF allows at most {MAX_METRICS_PER_LINE} metrics per line")
    for name, (_, unit) in metrics.items():
        if unit not in ALLOWED_UNITS:
            raise ValueError(f"unsupported EMF unit {unit!r} for {name}")
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["Service", *dims]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
                }
            ],
        },
        "Service": service,
    }
    document.update(dims)
    document.update({name: value for name, (value, _) in metrics.items()})
    return orjson.dumps(document).decode()


class EmfWriter:
    """Writes EMF lines at once (a batch job may exit any moment after a task); nothing when disabled."""

    def __init__(
        self,
        namespace: str,
        service: str = "janitor",
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        *,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.namespace = namespace
        self.service = service
        self._out = out
        self._clock = clock

    def emit(self, dims: Mapping[str, str], metrics: Mapping[str, tuple[float, str]]) -> None:
        if not self.enabled or not metrics:
            return
        line = emf_line(self.namespace, self.service, dims, metrics, int(self._clock() * 1000))
        out = self._out if self._out is not None else sys.stdout
        out.write(line + "\n")
        out.flush()
