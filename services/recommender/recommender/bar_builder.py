"""The recommender's views of a bar: indicator inputs, and bars from checkpoints of any age.

When bars close is shared with the streamer (stocktrack_common.bar_closing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender.features import BarValues
from stocktrack_common.bar_closing import BarBuilder
from stocktrack_common.bars import Bar


def bar_values(bar: Bar) -> BarValues:
    return BarValues(float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume))


def checkpointed_bar(state: Mapping[str, Any]) -> Bar:
    if "bucket_ms" in state:
        # Checkpoints written before the shared bar model: no tick times, so the open bar's open
        # and close are pinned to its start and any later tick of the bucket may replace the close.
        bucket = int(state["bucket_ms"])
        return Bar.from_state({**state, "bucket": bucket, "first_ts": bucket, "last_ts": bucket})
    return Bar.from_state(state)


def builder_from_checkpoint(interval_ms: int, state: Mapping[str, Any], *, grace_ms: int = 0) -> BarBuilder:
    return BarBuilder.from_state(interval_ms, state, grace_ms=grace_ms, bar_from_state=checkpointed_bar)
