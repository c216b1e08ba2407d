"""Security and operability properties every rendered workload must have.

Checked on the rendered manifests (defaults and production values) so a template change
cannot quietly drop them. The few exceptions are named in chart_support with their reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart_support import (
    API_CLIENT_COMPONENTS,
    LONG_RUNNING_KINDS,
    ROOT_COMPONENTS,
    UNPROBED_COMPONENTS,
    component,
    containers,
    pod_labels,
    pod_spec,
    rendered,
    service_directories,
    value_sets,
)

LABELS = sorted(value_sets())
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


def workload_params() -> list[Any]:
    return [
        pytest.param(workload, id=f"{label}:{workload['kind']}/{workload['metadata']['name']}")
        for label in LABELS
        for workload in rendered(label).workloads()
    ]


@pytest.mark.parametrize("workload", workload_params())
def test_pod_and_containers_are_locked_down(workload: dict[str, Any]) -> None:
    spec = pod_spec(workload)
    name = component(workload)
    pod_ctx = spec.get("securityContext", {})
    assert pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert spec.get("hostNetwork", False) is False
    assert spec.get("hostPID", False) is False
    if name not in API_CLIENT_COMPONENTS:
        assert spec.get("automountServiceAccountToken") is False
    for container in containers(workload):
        ctx = container.get("securityContext", {})
        if name not in ROOT_COMPONENTS:
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser", 0)) > 0
        assert ctx.get("readOnlyRootFilesystem") is True
        assert ctx.get("allowPrivilegeEscalation") is False
        assert ctx.get("privileged", False) is False
        assert ctx.get("capabilities", {}).get("drop") == ["ALL"]
        assert not ctx.get("capabilities", {}).get("add")
        assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault"


@pytest.mark.parametrize("workload", workload_params())
def test_tmp_is_a_writable_empty_dir(workload: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for container in containers(workload):
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, container["name"]
        assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("workload", workload_params())
def test_resources_requested_and_memory_limited(workload: dict[str, Any]) -> None:
    for container in containers(workload):
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), container["name"]
        assert "memory" in resources.get("limits", {}), container["name"]


@pytest.mark.parametrize(
    "workload",
    [p for p in workload_params() if p.values[0]["kind"] in LONG_RUNNING_KINDS],
)
def test_long_running_containers_have_probes(workload: dict[str, Any]) -> None:
    if component(workload) in UNPROBED_COMPONENTS:
        return
    for container in containers(workload):
        assert "livenessProbe" in container, container["name"]
        assert "readinessProbe" in container, container["name"]


@pytest.mark.parametrize("label", LABELS)
def test_stocktrack_services_probe_healthz_and_readyz(label: str) -> None:
    services = set(service_directories()) - {"janitor"}
    probed = set()
    for workload in rendered(label).of_kind("Deployment", "StatefulSet"):
        if component(workload) not in services:
            continue
        [container] = containers(workload)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        probed.add(component(workload))
    assert probed == services


@pytest.mark.parametrize("label", LABELS)
def test_standard_labels_on_every_manifest_and_pod(label: str) -> None:
    chart = rendered(label)
    for manifest in chart.manifests:
        missing = [k for k in STANDARD_LABELS if k not in manifest["metadata"].get("labels", {})]
        assert missing == [], f"{manifest['kind']}/{manifest['metadata']['name']}"
    for workload in chart.workloads():
        labels = pod_labels(workload)
        assert labels["app.kubernetes.io/component"] == component(workload)
        assert (
            labels["app.kubernetes.io/instance"]
            == workload["metadata"]["labels"]["app.kubernetes.io/instance"]
        )


@pytest.mark.parametrize("label", LABELS)
def test_every_service_in_the_repo_has_a_workload(label: str) -> None:
    images = {
        container["image"].rsplit("/", 1)[-1].split(":")[0]
        for workload in rendered(label).workloads()
        for container in containers(workload)
    }
    components = {component(w) for w in rendered(label).workloads()}
    for service in service_directories():
        assert f"stocktrack-{service}" in images, service
        assert service in components, service


@pytest.mark.parametrize("label", LABELS)
def test_only_stocktrack_pods_may_reach_in_cluster_databases(label: str) -> None:
    chart = rendered(label)
    policies = {p["metadata"]["name"]: p for p in chart.of_kind("NetworkPolicy")}
    for database in ("redis", "postgresql"):
        if not chart.values.get(database, {}).get("inCluster", {"enabled": True})["enabled"]:
            continue
        policy = policies[f"stocktrack-{database}"]
        [rule] = policy["spec"]["ingress"]
        [peer] = rule["from"]
        assert peer["podSelector"]["matchLabels"]["stocktrack.io/data-client"] == "true"
    clients = [w for w in chart.workloads() if pod_labels(w).get("stocktrack.io/data-client") == "true"]
    assert {component(w) for w in clients} >= set(service_directories())


def test_network_policies_cover_every_stocktrack_pod() -> None:
    chart = rendered("production")
    selectors = [p["spec"]["podSelector"]["matchLabels"] for p in chart.of_kind("NetworkPolicy")]
    for workload in chart.workloads():
        if component(workload) in API_CLIENT_COMPONENTS:
            continue
        labels = pod_labels(workload)
        assert any(all(labels.get(k) == v for k, v in s.items()) for s in selectors), component(workload)
