"""Every service starts from its built wheel, as in its image, and the api serves its pages from it.

The images install the packages with a regular (non-editable) pip install, so only files listed
as package data reach them; before this test the api image died at start because the dashboard
was not in its wheel. See tests/deploy/installed_env.py for how the environment is built.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stocktrack_devtools.servers import free_port
from tests.deploy import installed_env
from tests.deploy.chart_support import service_directories
from tests.support.waiting import WaitTimeout, wait_until

pytestmark = pytest.mark.wheels

LONG_RUNNING = tuple(s for s in service_directories() if s != "janitor")


@dataclass
class Running:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for(service: Running, path: str, timeout: float = 60.0) -> bytes:
    """The body of the first 200 answer to GET `path`; fails early if the process exits."""
    answers: list[bytes] = []

    def answered() -> bool:
        if service.proc.poll() is not None:
            raise AssertionError(f"{service.name} exited with {service.proc.returncode}:\n{service.output()}")
        try:
            status, body = _get(f"http://127.0.0.1:{service.port}{path}")
        except OSError:
            return False
        if status == 200:
            answers.append(body)
        return bool(answers)

    try:
        wait_until(answered, timeout, f"{service.name} to answer 200 on {path}")
    except WaitTimeout as exc:
        raise AssertionError(f"{exc}:\n{service.output()}") from None
    return answers[0]


@pytest.fixture
def started(
    installed: installed_env.InstalledEnv,
    service_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> Iterator[dict[str, Running]]:
    """Every long-running service, started at once from the virtualenv (`python -m <service>`)."""
    base = service_env()
    running: dict[str, Running] = {}
    for name in LONG_RUNNING:
        port = free_port()
        env = installed.env(
            REDIS_URL=base["REDIS_URL"],
            DATABASE_URL=base["DATABASE_URL"],
            STREAM_PREFIX=base["STREAM_PREFIX"],
            HTTP_PORT=str(port),
            METRICS_PORT=str(port),
            CONSUMER_NAME=name,
            PROVIDER="sim",
            HOME=str(tmp_path),
        )
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(installed.python), "-m", name],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running[name] = Running(name, port, proc, log)
    yield running
    for service in running.values():
        if service.proc.poll() is None:
            service.proc.terminate()
    for service in running.values():
        try:
            service.proc.wait(20)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait(10)


def test_project_packages_come_only_from_the_wheels(
    installed: installed_env.InstalledEnv, tmp_path: Path
) -> None:
    report = installed_env.check_installed(installed, tmp_path)
    assert report == {"outside": {}, "unsatisfied": []}


def test_every_service_starts_from_its_wheel_and_the_api_serves_its_pages(
    started: dict[str, Running],
) -> None:
    assert set(started) == set(LONG_RUNNING)
    for service in started.values():
        _wait_for(service, "/healthz")
        _wait_for(service, "/readyz")

    api = started["api"]
    page = _wait_for(api, "/", timeout=5)
    assert b"<html" in page.lower()
    assert b"/dashboard/static/" in page
    for path in ("/dashboard/static/js/main.js", "/docs", "/docs/static/swagger-ui/swagger-ui-bundle.js"):
        assert _wait_for(api, path, timeout=5), path
    assert b"openapi" in _wait_for(api, "/openapi.json", timeout=5)

    # Graceful stop, as on a rollout: SIGTERM and a clean exit.
    for service in started.values():
        assert service.proc.poll() is None, service.output()
        service.proc.terminate()
    for service in started.values():
        assert service.proc.wait(30) == 0, service.output()


def test_the_janitor_and_the_migration_command_run_from_the_wheels(
    installed: installed_env.InstalledEnv, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    base = service_env()
    env = installed.env(
        REDIS_URL=base["REDIS_URL"], DATABASE_URL=base["DATABASE_URL"], STREAM_PREFIX=base["STREAM_PREFIX"]
    )
    for command in (["stocktrack", "migrate"], [str(installed.python), "-m", "janitor", "all"]):
        executable = command[0] if Path(command[0]).is_absolute() else str(installed.bin / command[0])
        result = subprocess.run(
            [executable, *command[1:]], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        # EMF is off unless EMF_ENABLED is set: no metric lines on stdout.
        assert '{"_aws"' not in result.stdout


@pytest.mark.parametrize("service", service_directories())
def test_the_image_check_passes_on_the_installed_packages(
    installed: installed_env.InstalledEnv, service: str, tmp_path: Path
) -> None:
    """deploy/image_check.py, which gates every image push, finds every packaged file of the tree."""
    files = installed_env.package_files(service)
    assert any(name.startswith("stocktrack_common/migrations/") for name in files)
    result = subprocess.run(
        [str(installed.python), str(installed_env.IMAGE_CHECK), "--packages-only", service, *files],
        env=installed.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_check_reports_a_file_left_out_of_the_wheel(
    installed: installed_env.InstalledEnv, tmp_path: Path
) -> None:
    missing = "api/static/dashboard/not-packaged.js"
    result = subprocess.run(
        [str(installed.python), str(installed_env.IMAGE_CHECK), "--packages-only", "api", missing],
        env=installed.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"api: {missing} is missing from the installed package (package data)" in result.stdout
