"""The GitHub Actions workflow passes actionlint and zizmor offline, and keeps its delivery promises.

Each linter is also run on a deliberately broken copy, which proves the check can fail at all (a linter
that silently finds no file would otherwise pass forever).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

RunTool = Callable[..., subprocess.CompletedProcess[str]]
WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "ci.yml"

PINNED_USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<comment>.*)$")
SHA = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\b")


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"mutation target {old!r} vanished from ci.yml; update this test"
    target = tmp_path / ".github" / "workflows" / "ci.yml"
    target.parent.mkdir(parents=True)
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def _jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def test_actionlint_passes(run_tool: RunTool) -> None:
    result = run_tool("actionlint", "-no-color", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_broken_copy(run_tool: RunTool, tmp_path: Path) -> None:
    broken = _broken_copy(tmp_path, "needs: [publish]", "needs: [publsh]")
    result = run_tool("actionlint", "-no-color", broken)
    assert result.returncode != 0
    assert "publsh" in result.stdout


def test_zizmor_passes_offline(run_tool: RunTool) -> None:
    result = run_tool("zizmor", "--offline", "--no-progress", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_fails_on_a_broken_copy(run_tool: RunTool, tmp_path: Path) -> None:
    """An action referenced by a movable tag is exactly what SHA pinning is meant to prevent."""
    broken = _broken_copy(
        tmp_path,
        "aws-actions/amazon-ecr-login@062b18b96a7aff071d4dc91bc00c4c1a7945b076 # v2.0.1",
        "aws-actions/amazon-ecr-login@v2",
    )
    result = run_tool("zizmor", "--offline", "--no-progress", broken)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout


def test_every_action_is_pinned_by_commit_sha_with_its_release() -> None:
    uses_lines = [m for line in WORKFLOW.read_text().splitlines() if (m := PINNED_USES.match(line))]
    assert len(uses_lines) >= 10
    for match in uses_lines:
        assert SHA.match(match["ref"]), f"{match['action']} is pinned to {match['ref']!r}, not a commit"
        assert VERSION_COMMENT.search(match["comment"]), f"{match['action']} lacks a '# vX.Y.Z' comment"


def test_permissions_are_empty_by_default_and_minimal_per_job(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {}
    for name, job in _jobs(workflow).items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"job {name} must declare its permissions"
        assert permissions.get("contents") == "read", name
        assert all(level != "write" or scope == "id-token" for scope, level in permissions.items()), name
    oidc_jobs = {
        name for name, job in _jobs(workflow).items() if job["permissions"].get("id-token") == "write"
    }
    assert oidc_jobs == {"publish", "deploy"}


def test_checkout_never_leaves_the_token_on_disk(workflow: dict[str, Any]) -> None:
    for name, job in _jobs(workflow).items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, name


def test_aws_access_uses_oidc_roles_only() -> None:
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text
    assert "aws-secret-access-key" not in text
    assert text.count("role-to-assume:") == 2


def test_quality_gates_run_on_every_change(workflow: dict[str, Any]) -> None:
    jobs = _jobs(workflow)
    lint_commands = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    assert "ruff check" in lint_commands
    assert "ruff format --check" in lint_commands
    assert any(step.get("run") == ".venv/bin/mypy" for step in jobs["types"]["steps"])
    assert set(jobs["tests"]["services"]) == {"redis", "postgres"}
    assert any(step.get("run", "").startswith("make test") for step in jobs["tests"]["steps"])
    chart_commands = " ".join(step.get("run", "") for step in jobs["chart"]["steps"])
    assert "helm lint" in chart_commands
    assert "helm template" in chart_commands
    for name in ("lint", "types", "tests", "chart", "images"):
        assert "if" not in jobs[name], f"{name} must run for pull requests too"


def test_every_service_image_is_built_and_published(
    workflow: dict[str, Any], service_names: list[str]
) -> None:
    jobs = _jobs(workflow)
    assert service_names, "no services found"
    for name in ("images", "publish"):
        built = set(jobs[name]["strategy"]["matrix"]["service"])
        assert set(service_names) <= built, f"{name} misses {set(service_names) - built}"
    builds = " ".join(step.get("run", "") for step in jobs["images"]["steps"])
    # The one Dockerfile, through the Makefile (which knows each service's port), then the image check.
    assert 'make "image-$SERVICE" "test-image-$SERVICE" REQUIRE_DOCKER=1' in builds


def test_publish_pushes_the_checked_image_and_never_rebuilds(workflow: dict[str, Any]) -> None:
    jobs = _jobs(workflow)
    uploads = [
        s for s in jobs["images"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    assert [s["with"]["name"] for s in uploads] == ["image-${{ matrix.service }}"]
    publish_steps = jobs["publish"]["steps"]
    assert str(publish_steps[0]["uses"]).startswith("actions/download-artifact@")
    assert publish_steps[0]["with"]["name"] == "image-${{ matrix.service }}"
    publish = " ".join(step.get("run", "") for step in publish_steps)
    assert "docker load" in publish and "docker push" in publish
    assert "docker build" not in publish and "make " not in publish
    assert not any("build-push-action" in str(step.get("uses", "")) for step in publish_steps)


def test_image_tags_never_repeat_in_the_immutable_repositories(workflow: dict[str, Any]) -> None:
    """Commit plus run id and attempt: a re-run and the CodePipeline path ("-cb<n>") get their own tags."""
    tag = workflow["env"]["IMAGE_TAG"]
    assert "${{ github.sha }}" in tag and "${{ github.run_id }}" in tag and "${{ github.run_attempt }}" in tag
    buildspec = yaml.safe_load((WORKFLOW.parents[2] / "deploy/aws/buildspec-images.yml").read_text())
    codebuild_tag = buildspec["phases"]["pre_build"]["commands"][0]
    assert codebuild_tag == 'IMAGE_TAG="${CODEBUILD_RESOLVED_SOURCE_VERSION}-cb${CODEBUILD_BUILD_NUMBER}"'
    assert "-gh" in tag


def test_delivery_runs_only_on_main_after_every_gate(workflow: dict[str, Any]) -> None:
    jobs = _jobs(workflow)
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert jobs["publish"]["if"] == on_main
    assert jobs["deploy"]["if"] == on_main
    assert set(jobs["publish"]["needs"]) == {"lint", "types", "tests", "chart", "images"}
    assert jobs["deploy"]["needs"] == ["publish"]


def test_rollout_waits_for_approval_and_uses_the_environments_values(workflow: dict[str, Any]) -> None:
    deploy = _jobs(workflow)["deploy"]
    assert deploy["environment"] == "production"
    commands = " ".join(step.get("run", "") for step in deploy["steps"])
    assert "aws eks update-kubeconfig" in commands
    # The committed production values are only the base: the environment's own file comes from
    # the production environment's HELM_VALUES variable (see deploy/helm-upgrade.sh).
    assert 'deploy/helm-upgrade.sh stocktrack "$NAMESPACE" "$RUNNER_TEMP/values-environment.yaml"' in commands
    values_step = next(
        s for s in deploy["steps"] if "values-environment.yaml" in s.get("run", "") and "env" in s
    )
    assert values_step["env"]["HELM_VALUES"] == "${{ vars.HELM_VALUES }}"
    assert "values-production.yaml" not in commands
    assert workflow["env"]["CHART_PATH"] == "deploy/helm/stocktrack"
