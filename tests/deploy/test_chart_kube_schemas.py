"""Every rendered manifest is valid against the Kubernetes JSON schemas of a current release.

Validation is strict (unknown fields fail, so a misspelt field cannot slip through) and a
missing schema is a failure (so an API removed from Kubernetes cannot either). Custom
resources have no upstream schema in kubernetes-validate; the ServiceMonitor is checked
against the subset of the Prometheus operator's CRD schema the chart uses, kept in
crd-schemas/.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv_utils
import pytest

from tests.deploy.chart_support import render, rendered, value_sets

KUBE_VERSION = kv_utils.latest_version()
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Path(__file__).parent
    / "crd-schemas"
    / "servicemonitor.json",
}


def validate(manifest: dict[str, Any]) -> None:
    crd_schema = CRD_SCHEMAS.get((manifest["apiVersion"], manifest["kind"]))
    if crd_schema is not None:
        jsonschema.validate(manifest, json.loads(crd_schema.read_text()))
        return
    kv_utils.validate(manifest, KUBE_VERSION, strict=True)


def _manifest_id(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("label", sorted(value_sets()))
def test_every_manifest_matches_the_kubernetes_schema(label: str) -> None:
    failures: list[str] = []
    for manifest in rendered(label).manifests:
        try:
            validate(manifest)
        except kv_utils.SchemaNotFoundError as exc:
            failures.append(f"{_manifest_id(manifest)}: {exc.message}")
        except jsonschema.ValidationError as exc:
            failures.append(f"{_manifest_id(manifest)}: {exc.message} at {list(exc.absolute_path)}")
    assert failures == []


def test_kube_version_is_current() -> None:
    major, minor = (int(part) for part in KUBE_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 33)


def test_a_misspelt_field_fails_validation() -> None:
    deployment = copy.deepcopy(rendered("default").of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(deployment)


def test_a_removed_api_fails_validation() -> None:
    pdb = copy.deepcopy(rendered("default").of_kind("PodDisruptionBudget")[0])
    pdb["apiVersion"] = "policy/v1beta1"
    with pytest.raises(kv_utils.SchemaNotFoundError):
        validate(pdb)


def test_the_service_monitor_schema_is_strict_too() -> None:
    [monitor] = copy.deepcopy(rendered("production").of_kind("ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


VARIANTS = {
    "minimal": {
        "ingress": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "janitor": {"enabled": False},
        "training": {"enabled": False},
        "migrations": {"enabled": False},
        "grafana": {"dashboards": {"enabled": False}},
        "metrics": {"podAnnotations": False, "serviceMonitor": {"enabled": False}},
        "api": {"autoscaling": {"enabled": False}, "pdb": {"enabled": False}},
        "serviceAccount": {"create": False, "name": "shared"},
    },
    "persistent-trial-with-cloudwatch": {
        "redis": {"inCluster": {"persistence": {"enabled": True, "storageClass": "gp3"}}},
        "postgresql": {"inCluster": {"persistence": {"enabled": True}}},
        "emf": {"enabled": True},
        "cloudwatch": {
            "region": "us-east-1",
            "clusterName": "trial",
            "fluentBit": {"enabled": True},
            "agent": {"enabled": True},
        },
        "imagePullSecrets": [{"name": "registry"}],
        "image": {"registry": "registry.example.com/team/", "tag": "1.2.3"},
        "ingress": {
            "host": "stocktrack.local",
            "tls": [{"hosts": ["stocktrack.local"], "secretName": "tls"}],
        },
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_optional_parts_render_valid_manifests(variant: str) -> None:
    chart = render(VARIANTS[variant], variant)
    assert chart.workloads()
    for manifest in chart.manifests:
        validate(manifest)
