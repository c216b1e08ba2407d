"""deploy/helm/values-cluster-mode.yaml over the production values: Redis Cluster and a read replica."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.chart_support import CHART, render, value_sets

CLUSTER_VALUES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "values-cluster-mode.yaml"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's own layering of -f files: maps merge key by key, anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env(chart: Any, component: str) -> dict[str, Any]:
    for workload in chart.workloads():
        if workload["metadata"]["labels"].get("app.kubernetes.io/component") == component:
            spec = (
                workload["spec"].get("template", {}).get("spec")
                or workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            )
            return {e["name"]: e for c in spec["containers"] for e in c.get("env", [])}
    raise AssertionError(f"no workload for {component}")


def test_cluster_mode_sets_redis_cluster_and_gives_only_the_api_the_replica() -> None:
    values = _merge(value_sets()["production"], yaml.safe_load(CLUSTER_VALUES.read_text()))
    chart = render(values, "cluster-mode")
    config = next(m for m in chart.of_kind("ConfigMap") if m["metadata"]["name"].endswith("-config"))
    assert config["data"]["REDIS_CLUSTER"] == "true"
    assert config["data"]["TICK_SHARDS"] == "16"
    replica = _env(chart, "api")["DATABASE_READ_URL"]
    assert replica["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_READ_URL"
    assert "DATABASE_READ_URL" not in _env(chart, "writer")


def test_default_values_stay_on_one_redis_node() -> None:
    config = next(
        m for m in render({}, "default").of_kind("ConfigMap") if m["metadata"]["name"].endswith("-config")
    )
    assert config["data"]["REDIS_CLUSTER"] == "false"


def test_schema_refuses_cluster_mode_with_the_single_node_in_cluster_redis() -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"config": {"redisCluster": True}})
