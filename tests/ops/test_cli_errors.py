"""Every operator command fails the way an operator can act on: one line, a documented exit code.

Exit codes (stocktrack_common.cli): 0 ok, 1 a check failed or a server is unreachable, 2 a usage or
configuration error. Servers that are "down" here are ports nothing listens on; nothing shared stops.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis

from stocktrack_common.stream_names import dead_stream


def closed_port() -> int:
    """A port nothing listens on: bound once to get a free number, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    code: int
    says: str


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(args: tuple[str, ...], env: dict[str, str]) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "stocktrack_common.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def cases(base: dict[str, str]) -> list[Case]:
    redis_down = {**base, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    pg_down = {
        **base,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/x",
        "CONNECT_ATTEMPTS": "1",
    }
    bad_redis_url = {**base, "REDIS_URL": "notaurl"}
    bad_pg_url = {**base, "DATABASE_URL": "postgresql://postgres@127.0.0.1:notaport/x"}
    bad_prefix = {**base, "STREAM_PREFIX": "bad prefix"}
    return [
        Case("streams, Redis down", ("streams",), redis_down, 1, "Redis unreachable"),
        Case("dead list, Redis down", ("dead", "list"), redis_down, 1, "Redis unreachable"),
        Case("dead replay, Redis down", ("dead", "replay", "--all"), redis_down, 1, "Redis unreachable"),
        Case("doctor, Redis down", ("doctor",), redis_down, 1, "FAILED"),
        Case("doctor, PostgreSQL down", ("doctor",), pg_down, 1, "FAILED"),
        Case("migrate, PostgreSQL down", ("migrate",), pg_down, 1, "PostgreSQL unreachable"),
        Case(
            "migrate --check, PostgreSQL down", ("migrate", "--check"), pg_down, 1, "PostgreSQL unreachable"
        ),
        Case("streams, malformed REDIS_URL", ("streams",), bad_redis_url, 2, "REDIS_URL"),
        Case("dead list, malformed REDIS_URL", ("dead", "list"), bad_redis_url, 2, "REDIS_URL"),
        Case("doctor, malformed REDIS_URL", ("doctor",), bad_redis_url, 2, "REDIS_URL"),
        Case("janitor, malformed DATABASE_URL", ("janitor", "partitions"), bad_pg_url, 2, "DATABASE_URL"),
        Case("streams --redis-url malformed", ("streams", "--redis-url", "notaurl"), base, 2, "--redis-url"),
        Case("streams, bad STREAM_PREFIX", ("streams",), bad_prefix, 2, "STREAM_PREFIX"),
        Case("streams --prefix malformed", ("streams", "--prefix", "bad prefix"), base, 2, "--prefix"),
        Case(
            "janitor, TICK_RETENTION_DAYS=30d",
            ("janitor", "retention"),
            {**base, "TICK_RETENTION_DAYS": "30d"},
            2,
            "TICK_RETENTION_DAYS",
        ),
        Case(
            "janitor, PARTITIONS_AHEAD_DAYS=-1",
            ("janitor", "partitions"),
            {**base, "PARTITIONS_AHEAD_DAYS": "-1"},
            2,
            "PARTITIONS_AHEAD_DAYS",
        ),
        Case(
            "janitor --wait-lock -5", ("janitor", "partitions", "--wait-lock", "-5"), base, 2, "--wait-lock"
        ),
        Case(
            "janitor --wait-lock nan", ("janitor", "partitions", "--wait-lock", "nan"), base, 2, "--wait-lock"
        ),
        Case("doctor --days-ahead -1", ("doctor", "--days-ahead", "-1"), base, 2, "--days-ahead"),
        Case(
            "doctor --max-pending-age inf",
            ("doctor", "--max-pending-age", "inf"),
            base,
            2,
            "--max-pending-age",
        ),
        Case("janitor trim-streams, Redis down", ("janitor", "trim-streams"), redis_down, 1, "task failed"),
        Case("janitor, PostgreSQL down", ("janitor", "partitions"), pg_down, 1, "janitor run failed"),
    ]


def test_expected_failures_are_one_line_with_the_documented_code(
    service_env: Callable[..., dict[str, str]],
) -> None:
    base = service_env()
    todo = cases(base)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda case: run(case.args, case.env), todo))
    problems = []
    for case, out in zip(todo, outcomes, strict=True):
        text = out.stdout + out.stderr
        if out.code != case.code:
            problems.append(f"{case.name}: exit {out.code}, expected {case.code}: {text[-400:]}")
        if "Traceback" in text:
            problems.append(f"{case.name}: printed a traceback:\n{text[-1500:]}")
        if case.says not in text:
            problems.append(f"{case.name}: does not say {case.says!r}: {text[-400:]}")
        # Plain commands answer in one line; doctor prints its table of checks, argparse its usage line.
        if case.args[0] in {"streams", "dead", "migrate"} and not case.args[-1].startswith("-"):
            lines = [line for line in out.stderr.splitlines() if line.strip()]
            if len(lines) != 1:
                problems.append(f"{case.name}: {len(lines)} lines on stderr: {out.stderr!r}")
    assert not problems, "\n".join(problems)


def test_secrets_in_a_bad_url_are_not_echoed(service_env: Callable[..., dict[str, str]]) -> None:
    env = {**service_env(), "REDIS_URL": "http://user:s3cr3t-token@example.invalid/0"}
    out = run(("streams",), env)
    assert out.code == 2
    assert "s3cr3t-token" not in out.stdout + out.stderr
    assert "REDIS_URL" in out.stderr


def test_doctor_fails_on_a_prefix_without_streams(service_env: Callable[..., dict[str, str]]) -> None:
    out = run(("doctor", "--prefix", "no-such-prefix-typo"), service_env())
    assert out.code == 1, out.stdout + out.stderr
    assert "no streams under prefix 'no-such-prefix-typo'" in out.stdout


def test_doctor_warns_loudly_on_built_in_defaults(service_env: Callable[..., dict[str, str]]) -> None:
    env = {k: v for k, v in service_env().items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    out = run(("doctor",), env)
    assert "WARNING: REDIS_URL is not set" in out.stderr
    assert "WARNING: DATABASE_URL is not set" in out.stderr
    assert "WARN  config" in out.stdout


@pytest.mark.parametrize("command", [("dead", "list", "--entries"), ("dead", "list", "--entries", "--json")])
def test_a_closed_pipe_is_not_an_error(
    command: tuple[str, ...], service_env: Callable[..., dict[str, str]], redis_url: str, prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.xadd(
            dead_stream(prefix), {"stream": f"{prefix}:ticks:{{0}}", "id": f"{i}-0", "error": "x" * 200}
        )
    pipe.execute()
    client.close()
    cli = subprocess.Popen(
        [sys.executable, "-m", "stocktrack_common.cli", *command],
        env=service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert cli.stdout is not None and cli.stderr is not None
    cli.stdout.readline()
    cli.stdout.close()  # what `| head -1` does
    stderr = cli.stderr.read().decode()
    assert cli.wait(60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
