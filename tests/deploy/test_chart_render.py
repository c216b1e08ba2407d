"""The chart renders, lints cleanly and rejects bad values, with defaults and production values."""

from __future__ import annotations

import copy
from collections import Counter

import helm_python as helm
import kubernetes_validate.utils as kv_utils
import pytest

from tests.deploy.chart_support import CHART, RELEASE, render, rendered, value_sets

LABELS = sorted(value_sets())
KUBE_VERSION = f"v{kv_utils.latest_version()}"


@pytest.mark.parametrize("label", LABELS)
def test_renders_named_unique_manifests(label: str) -> None:
    chart = rendered(label)
    assert len(chart.manifests) > 20
    for manifest in chart.manifests:
        assert {"apiVersion", "kind", "metadata"} <= manifest.keys(), manifest
        assert manifest["metadata"]["name"]
    names = Counter((m["kind"], m["metadata"]["name"]) for m in chart.manifests)
    assert [key for key, count in names.items() if count > 1] == []


@pytest.mark.parametrize("label", LABELS)
def test_lint_is_clean_in_strict_mode(label: str) -> None:
    report = helm.lint(CHART, value_sets()[label], strict=True, kube_version=KUBE_VERSION)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


def test_lint_reports_a_broken_values_file() -> None:
    report = helm.lint(CHART, {"config": {"tickShards": "many"}}, strict=True, kube_version=KUBE_VERSION)
    assert report["errors"] or any(m["severity"] >= 3 for m in report["messages"])


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"writer": {"replicaz": 3}}, "misspelt key"),
        ({"config": {"symbols": ["aapl"]}}, "lower-case symbol"),
        ({"fetcher": {"replicas": 2}}, "two fetchers would publish every tick twice"),
        ({"janitor": {"tasks": {"defrag": {"schedule": "0 * * * *"}}}}, "unknown janitor task"),
        ({"janitor": {"tasks": {"vacuum": {"schedule": "sometimes"}}}}, "bad cron expression"),
        ({"redis": {"inCluster": {"enabled": False}}}, "external Redis without existingSecret"),
        ({"cloudwatch": {"agent": {"enabled": True}}}, "CloudWatch agent without region"),
        ({"metrics": {"serviceMonitor": {"enabled": "yes"}}}, "serviceMonitor is true/false/auto"),
    ],
)
def test_schema_rejects_bad_values(override: dict[str, object], reason: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(override)


def test_schema_requires_database_cidrs_when_network_policies_guard_external_databases() -> None:
    production = copy.deepcopy(value_sets()["production"])
    production["networkPolicy"]["externalPostgres"]["cidrs"] = []
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError, match="minItems"):
        chart.validate_schema(production)


def test_config_change_rolls_the_pods() -> None:
    def checksums(values: dict[str, object]) -> set[str]:
        chart = render(values)
        return {
            w["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for w in chart.of_kind("Deployment", "StatefulSet")
            if w["metadata"]["labels"]["app.kubernetes.io/component"] not in ("redis", "postgresql")
        }

    before = checksums({})
    after = checksums({"config": {"logLevel": "DEBUG"}})
    assert len(before) == 1
    assert before != after


def test_recommender_replicas_know_their_ordinal_and_count() -> None:
    [recommender] = [
        w
        for w in rendered("production").of_kind("StatefulSet")
        if w["metadata"]["labels"]["app.kubernetes.io/component"] == "recommender"
    ]
    env = {e["name"]: e for e in recommender["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REPLICA_COUNT"]["value"] == str(recommender["spec"]["replicas"])
    assert env["REPLICA_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert env["CONSUMER_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_ingress_routes_streaming_paths_to_the_streamer() -> None:
    [ingress] = rendered("production").of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "alb"
    routes = {
        (p["path"], p["pathType"]): p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes == {
        ("/v1/stream", "Prefix"): f"{RELEASE}-streamer",
        ("/v1/ws", "Prefix"): f"{RELEASE}-streamer",
        ("/v1", "Prefix"): f"{RELEASE}-api",
        ("/", "Exact"): f"{RELEASE}-api",
        ("/models", "Exact"): f"{RELEASE}-api",
        ("/dashboard", "Prefix"): f"{RELEASE}-api",
    }


def test_docs_are_routed_only_when_enabled() -> None:
    [ingress] = rendered("default").of_kind("Ingress")
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert {"/docs", "/openapi.json"} <= paths
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_janitor_cronjobs_never_overlap_and_keep_bounded_history() -> None:
    cronjobs = rendered("default").of_kind("CronJob")
    tasks = {c["metadata"]["labels"].get("stocktrack.io/task") for c in cronjobs}
    assert {"partitions", "retention", "vacuum", "trim-streams", "prune-models", "train"} <= tasks
    for cronjob in cronjobs:
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["successfulJobsHistoryLimit"] <= 5
        assert spec["failedJobsHistoryLimit"] <= 5
        assert spec["jobTemplate"]["spec"]["backoffLimit"] >= 0


@pytest.mark.parametrize(("label", "hook"), [("default", "post-install"), ("production", "pre-install")])
def test_migration_runs_as_a_hook_before_upgrades(label: str, hook: str) -> None:
    [job] = rendered(label).of_kind("Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert hooks == [hook, "pre-upgrade"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["stocktrack", "migrate"]


def test_service_monitor_follows_the_capability_unless_forced() -> None:
    assert rendered("default").of_kind("ServiceMonitor") == []
    assert len(rendered("production").of_kind("ServiceMonitor")) == 1


def test_one_dashboard_configmap_per_json_file() -> None:
    dashboards = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert dashboards
    configmaps = [
        m for m in rendered("default").of_kind("ConfigMap") if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    assert sorted(name for cm in configmaps for name in cm["data"]) == dashboards


def test_no_secret_values_in_production_manifests() -> None:
    assert rendered("production").of_kind("Secret") == []
