"""Tick shards are split between alerts replicas so each symbol's ticks reach one of them."""

from __future__ import annotations

import pytest

from alerts.settings import AlertsSettings, owned_shards


def settings(**values: object) -> AlertsSettings:
    return AlertsSettings.model_validate({"tick_shards": 4, "consumer_name": "alerts", **values})


def test_one_replica_owns_every_shard() -> None:
    assert owned_shards(settings()) == [0, 1, 2, 3]


def test_replicas_split_the_shards_without_overlap() -> None:
    owned = [owned_shards(settings(replica_count=3, consumer_name=f"alerts-{i}")) for i in range(3)]
    assert owned == [[0, 3], [1], [2]]
    assert owned_shards(settings(replica_count=2, replica_index=1)) == [1, 3]


def test_explicit_shards_win_and_are_checked() -> None:
    assert owned_shards(settings(alerts_shards="2, 0", replica_count=2, replica_index=1)) == [0, 2]
    with pytest.raises(ValueError, match="out of range"):
        owned_shards(settings(alerts_shards="4"))
    with pytest.raises(ValueError, match="index"):
        owned_shards(settings(replica_count=2))
