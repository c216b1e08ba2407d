"""The production values with the longest release name the pipeline allows render a valid install.

Rendered with deploy/helm/values-production.yaml and a 53-character release name (the
HelmReleaseName pattern of deploy/aws/pipeline.yaml): every manifest valid for Kubernetes 1.31
in strict mode, names within Kubernetes' limits, TLS to the database verified with a CA bundle
wherever DATABASE_URL is set, the api behind the ALB with its real client addresses and its
pepper from a Secret, graceful rollouts, and nothing but public paths on the ingress.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from tests.deploy.chart_support import (
    NAMESPACE,
    REPO,
    RenderedChart,
    component,
    containers,
    pod_spec,
    render,
    value_sets,
)

RELEASE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")
LONG_RELEASE = "stocktrack-production-eu-west-1-blue-green-canary-abc"
KUBE_VERSION = "1.31.0"
PRIVATE_PATHS = ("/metrics", "/readyz", "/healthz")


@functools.cache
def production() -> RenderedChart:
    return render(value_sets()["production"], "production-long-release", release=LONG_RELEASE)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_release_name_is_the_longest_the_pipeline_allows() -> None:
    pipeline = (REPO / "deploy" / "aws" / "pipeline.yaml").read_text()
    assert '"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$"' in pipeline
    assert len(LONG_RELEASE) == 53
    assert RELEASE_PATTERN.match(LONG_RELEASE)


def test_every_manifest_is_valid_for_kubernetes_1_31_strict() -> None:
    failures = []
    for manifest in production().manifests:
        if manifest["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a custom resource: test_chart_kube_schemas checks it against its CRD subset
        try:
            kv_utils.validate(manifest, KUBE_VERSION, strict=True)
        except (kv_utils.SchemaNotFoundError, jsonschema.ValidationError) as exc:
            failures.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc}")
    assert failures == []


def test_names_fit_kubernetes_limits() -> None:
    """CronJobs and StatefulSets <= 52 (their Jobs and revision hashes add 11), the rest <= 63."""
    too_long = []
    for manifest in production().manifests:
        name = manifest["metadata"]["name"]
        limit = 52 if manifest["kind"] in ("CronJob", "StatefulSet") else 63
        if len(name) > limit:
            too_long.append(f"{manifest['kind']}/{name} ({len(name)} > {limit})")
    assert too_long == []
    assert production().of_kind("CronJob")


def test_two_long_release_names_with_one_prefix_get_different_objects() -> None:
    other = render(value_sets()["production"], "other", release=LONG_RELEASE[:-3] + "xyz")
    mine = {m["metadata"]["name"] for m in production().of_kind("CronJob")}
    theirs = {m["metadata"]["name"] for m in other.of_kind("CronJob")}
    assert mine.isdisjoint(theirs)


def test_every_container_given_database_url_verifies_the_server_with_a_ca_bundle() -> None:
    with_database = 0
    for workload in production().workloads():
        for container in containers(workload):
            env = _env(container)
            if "DATABASE_URL" not in env:
                continue
            with_database += 1
            assert env["PGSSLROOTCERT"]["value"] == "/etc/stocktrack/certs/rds-global-bundle.pem", container[
                "name"
            ]
    assert with_database >= 10


def test_a_mounted_ca_bundle_replaces_the_image_one_everywhere() -> None:
    values = yaml.safe_load(yaml.safe_dump(value_sets()["production"]))
    values["database"] = {"caBundle": {"source": "secret", "name": "db-ca", "key": "bundle.pem"}}
    chart = render(values, "mounted-ca", release=LONG_RELEASE)
    for workload in chart.workloads():
        spec = pod_spec(workload)
        for container in containers(workload):
            env = _env(container)
            if "DATABASE_URL" not in env:
                continue
            assert env["PGSSLROOTCERT"]["value"] == "/etc/stocktrack/database-ca/bundle.pem"
            mounts = {m["name"]: m for m in container["volumeMounts"]}
            assert mounts["database-ca"] == {
                "name": "database-ca",
                "mountPath": "/etc/stocktrack/database-ca",
                "readOnly": True,
            }
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert volumes["database-ca"]["secret"]["secretName"] == "db-ca"


def test_the_api_trusts_the_vpc_and_reads_its_pepper_from_a_secret() -> None:
    [api] = [w for w in production().of_kind("Deployment") if component(w) == "api"]
    env = _env(pod_spec(api)["containers"][0])
    assert env["TRUSTED_PROXIES"]["value"] == "10.0.0.0/16"
    assert env["API_KEY_PEPPER"]["valueFrom"]["secretKeyRef"] == {
        "name": "stocktrack-connections",
        "key": "API_KEY_PEPPER",
    }
    assert "value" not in env["API_KEY_PEPPER"]


def test_the_streamer_verifies_keys_with_the_same_pepper_as_the_api() -> None:
    """A key the api accepts must verify at /v1/stream too, so both read one pepper."""
    workloads = {component(w): w for w in production().of_kind("Deployment")}
    peppers = [_env(pod_spec(workloads[c])["containers"][0])["API_KEY_PEPPER"] for c in ("api", "streamer")]
    assert peppers[0] == peppers[1] and "valueFrom" in peppers[0]


def test_secret_env_is_available_to_every_component() -> None:
    values = yaml.safe_load(yaml.safe_dump(value_sets()["production"]))
    values["alerts"] = {
        "secretEnv": [{"env": "WEBHOOK_TOKEN", "key": "token", "secret": "hooks", "optional": True}]
    }
    chart = render(values, "alerts-secret")
    [alerts] = [w for w in chart.of_kind("StatefulSet") if component(w) == "alerts"]
    env = _env(pod_spec(alerts)["containers"][0])
    assert env["WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hooks",
        "key": "token",
        "optional": True,
    }


@pytest.mark.parametrize("name", ["api", "streamer"])
def test_http_services_pause_before_stopping_and_the_alb_drains_them(name: str) -> None:
    [workload] = [w for w in production().of_kind("Deployment") if component(w) == name]
    spec = pod_spec(workload)
    sleep = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert 0 < int(sleep[1]) < spec["terminationGracePeriodSeconds"]
    [ingress] = production().of_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/target-group-attributes"] == (
        "deregistration_delay.timeout_seconds=30"
    )
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"


def _covers(path: str, path_type: str, target: str) -> bool:
    if path_type == "Exact":
        return target == path
    prefix = path.rstrip("/")
    return target == path or target.startswith(prefix + "/")


def test_no_ingress_path_reaches_probes_or_metrics() -> None:
    [ingress] = production().of_kind("Ingress")
    paths = [(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths
    exposed = [(p, t, x) for p, t in paths for x in PRIVATE_PATHS if _covers(p, t, x)]
    assert exposed == []
    assert ("/docs", "Prefix") not in paths, "production values keep /docs off the internet"
    assert _covers("/", "Prefix", "/metrics"), "the check itself catches a catch-all route"


def test_fluent_bit_runs_in_its_own_namespace_reads_from_head_and_keeps_metadata() -> None:
    chart = production()
    fluent_bit = [m for m in chart.manifests if component(m) == "fluent-bit"]
    placed = {(m["kind"], m["metadata"].get("namespace")) for m in fluent_bit}
    assert ("DaemonSet", "stocktrack-logging") in placed
    assert ("ConfigMap", "stocktrack-logging") in placed
    assert ("Role", None) in placed, "pod metadata of the release namespace only"
    [binding] = [m for m in fluent_bit if m["kind"] == "RoleBinding"]
    assert binding["subjects"][0]["namespace"] == "stocktrack-logging"
    [config] = [m for m in fluent_bit if m["kind"] == "ConfigMap"]
    conf = config["data"]["fluent-bit.conf"]
    assert re.search(r"Read_from_Head\s+On", conf)
    assert f"/var/log/containers/*_{NAMESPACE}_*.log" in conf
    outputs = conf.split("[OUTPUT]")[1:]
    [app_output] = [o for o in outputs if re.search(r"Match\s+kube\.\*", o)]
    assert "log_key" not in app_output, "the whole record, kubernetes metadata included, is sent"
    [emf_output] = [o for o in outputs if re.search(r"Match\s+emf\.\*", o)]
    assert re.search(r"log_format\s+json/emf", emf_output)


def test_the_migration_hook_keeps_its_pod_for_the_log_collector() -> None:
    [job] = production().of_kind("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
