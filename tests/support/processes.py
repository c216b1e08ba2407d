"""Run real services as subprocesses, the way Kubernetes would, and wait on their probes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stocktrack_devtools.servers import free_port
from tests.support.waiting import WaitTimeout, wait_until


@dataclass
class ServiceProcess:
    """One service process; its output goes to a log file the test can read on failure."""

    module: str
    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.port = int(self.env.get("METRICS_PORT") or self.env.get("HTTP_PORT") or 0)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_healthy(self, timeout: float = 30.0, path: str = "/healthz") -> None:
        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.module} exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False

        try:
            wait_until(answers, timeout, f"{self.module} to answer {path}")
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}:\n{self.output()[-3000:]}") from None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to finish or ack anything (the crash tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.module} did not stop within {timeout}s") from None

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)


class Services:
    """Starts services for one test and makes sure none outlives it."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self.base_env = base_env
        self.log_dir = log_dir
        self.started: list[ServiceProcess] = []

    def start(self, module: str, *args: str, name: str | None = None, **env: str) -> ServiceProcess:
        full = {**self.base_env, **env}
        if "METRICS_PORT" not in env:
            full["METRICS_PORT"] = str(free_port())
        if "HTTP_PORT" not in env:
            full["HTTP_PORT"] = str(free_port())
        if module in {"api", "streamer"}:
            full["METRICS_PORT"] = full["HTTP_PORT"]
        full.setdefault("CONSUMER_NAME", name or module)
        log_path = self.log_dir / f"{name or module}.log"
        proc = ServiceProcess(module, full, log_path, list(args)).start()
        if module in {"api", "streamer"}:
            proc.port = int(full["HTTP_PORT"])
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            with contextlib.suppress(AssertionError):
                proc.terminate(timeout=15)


def child_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "STREAM_PREFIX"}}
    env.update(values)
    env.setdefault("LOG_LEVEL", "INFO")
    # Tests stamp ticks on fixed past days; tests of the retention policy set their own value.
    env.setdefault("TICK_RETENTION_DAYS", "36500")
    env["PYTHONUNBUFFERED"] = "1"
    return env
