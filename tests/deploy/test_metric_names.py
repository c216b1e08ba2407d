"""Every metric the dashboards and the CloudWatch agent config name is one the code exports.

Exported names come from the prometheus_client definitions in the Python sources (names start
with stocktrack_); a dashboard or an EMF declaration naming anything else would show nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.chart_support import CHART, REPO, rendered

DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*[\"'](stocktrack_[a-z0-9_]+)[\"']")
METRIC_NAME = re.compile(r"\bstocktrack_[a-z0-9_]+\b")
SOURCE_ROOTS = (REPO / "libs" / "common", REPO / "services")


def metric_definitions() -> dict[str, str]:
    """Metric name -> prometheus_client type, from every Python source file we ship."""
    found: dict[str, str] = {}
    for root in SOURCE_ROOTS:
        for path in root.rglob("*.py"):
            if "build" in path.parts or any(part.endswith(".egg-info") for part in path.parts):
                continue
            for kind, name in DEFINITION.findall(path.read_text(encoding="utf-8")):
                found[name] = kind
    return found


def exported_series(definitions: dict[str, str]) -> dict[str, str]:
    """Series names as a scrape shows them (suffixes added by prometheus_client) -> type."""
    series: dict[str, str] = {}
    for name, kind in definitions.items():
        if kind == "Counter":
            series[name.removesuffix("_total") + "_total"] = kind
        elif kind == "Histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[name + suffix] = kind
        elif kind == "Summary":
            for suffix in ("", "_sum", "_count"):
                series[name + suffix] = kind
        else:
            series[name] = kind
    return series


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def dashboard_metrics(path: Path) -> set[str]:
    dashboard = json.loads(path.read_text())
    return {name for text in _strings(dashboard) for name in METRIC_NAME.findall(text)}


def cloudwatch_agent_config() -> dict[str, Any]:
    [configmap] = [
        m
        for m in rendered("production").of_kind("ConfigMap")
        if m["metadata"]["name"].endswith("-cloudwatch-agent")
    ]
    config: dict[str, Any] = json.loads(configmap["data"]["cwagentconfig.json"])
    return config


def cloudwatch_metrics() -> set[str]:
    processor = cloudwatch_agent_config()["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
    names = set(processor.get("metric_unit", {}))
    for declaration in processor["metric_declaration"]:
        for selector in declaration["metric_selectors"]:
            assert re.fullmatch(r"\^stocktrack_[a-z0-9_]+\$", selector), f"exact-name selector: {selector}"
            names.add(selector.strip("^$"))
    return names


DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))


def test_sources_define_metrics() -> None:
    definitions = metric_definitions()
    assert "stocktrack_consumer_lag" in definitions
    assert all(name.startswith("stocktrack_") for name in definitions)


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_metrics_are_exported(dashboard: Path) -> None:
    series = exported_series(metric_definitions())
    named = dashboard_metrics(dashboard)
    assert named, "the dashboard queries stocktrack metrics"
    assert sorted(named - series.keys()) == []


def test_cloudwatch_agent_metrics_are_exported_and_not_histograms() -> None:
    series = exported_series(metric_definitions())
    named = cloudwatch_metrics()
    assert named
    assert sorted(named - series.keys()) == []
    # The agent drops Prometheus histograms: declaring one would silently publish nothing.
    assert sorted(n for n in named if series[n] == "Histogram") == []


def test_dashboards_are_complete_grafana_documents() -> None:
    assert DASHBOARDS
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids))
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
