"""Rendering the Helm chart offline and walking its manifests, shared by the deploy tests.

Rendering goes through the Helm v4 SDK (helm-python-sdk), so no helm binary, cluster or
network is involved; results are cached because several test modules inspect the same output.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "stocktrack"
PRODUCTION_VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
RELEASE = "stocktrack"
NAMESPACE = "stocktrack"

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})

# Observability agents that must call the Kubernetes API (pod metadata, service discovery)
# and therefore mount their service-account token.
API_CLIENT_COMPONENTS = frozenset({"fluent-bit", "cloudwatch-agent"})
# The log collector reads root-owned container log files on the node, so it runs as uid 0
# (with no capabilities and a read-only root file system).
ROOT_COMPONENTS = frozenset({"fluent-bit"})
# The CloudWatch agent exposes no health endpoint to probe.
UNPROBED_COMPONENTS = frozenset({"cloudwatch-agent"})


def value_sets() -> dict[str, dict[str, Any]]:
    """The value files every chart test runs against: the defaults and a production-like set."""
    production = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return {"default": {}, "production": production}


@dataclass(frozen=True)
class RenderedChart:
    """One offline render: the raw text per template and the parsed manifests."""

    label: str
    values: dict[str, Any]
    templates: dict[str, str]
    manifests: tuple[dict[str, Any], ...]

    def yaml_stream(self) -> str:
        """All manifests as one multi-document YAML stream, as `helm template` would print."""
        return yaml.safe_dump_all(list(self.manifests), sort_keys=False)

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] in kinds]

    def workloads(self) -> list[dict[str, Any]]:
        return self.of_kind(*WORKLOAD_KINDS)


def render(values: dict[str, Any], label: str = "custom", release: str = RELEASE) -> RenderedChart:
    """Render the chart; parse every template except NOTES.txt (plain text) as YAML."""
    with helm.Chart.load(CHART) as chart:
        templates = chart.render(values, name=release, namespace=NAMESPACE, is_install=True)
    manifests: list[dict[str, Any]] = []
    for path, text in sorted(templates.items()):
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return RenderedChart(label, values, templates, tuple(manifests))


@functools.cache
def rendered(label: str) -> RenderedChart:
    """Cached render of one of the named value sets."""
    return render(value_sets()[label], label)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside any workload kind."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    labels: dict[str, str] = spec["template"]["metadata"].get("labels", {})
    return labels


def component(workload: dict[str, Any]) -> str:
    return str(workload["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def service_directories() -> list[str]:
    """Every service in the repository: a folder under services/ holding a package of its name."""
    services = REPO / "services"
    return sorted(p.name for p in services.iterdir() if (p / p.name).is_dir())
