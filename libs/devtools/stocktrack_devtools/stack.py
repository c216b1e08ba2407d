"""`make run`: the whole stack on one machine, logs interleaved, Ctrl-C stops everything cleanly.

Servers come from `servers` (environment, local ports, Docker, or embedded binaries under
.stack/); the database is migrated; then every installed service starts as its own process,
exactly as it would in a container. Ports are printed in the banner.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from stocktrack_common.migrations import migrate
from stocktrack_devtools.servers import ensure_database, find_or_start


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env: dict[str, str]
    args: tuple[str, ...] = ()


def stack_services(api_port: int, streamer_port: int, metrics_base: int) -> list[ServiceSpec]:
    # The page's default is the streamer on its own host at port 8081; say so when it moved.
    dashboard = {} if streamer_port == 8081 else {"DASHBOARD_STREAM_URL": f"http://127.0.0.1:{streamer_port}"}
    return [
        ServiceSpec("writer", "writer", {"METRICS_PORT": str(metrics_base)}),
        ServiceSpec("recommender", "recommender", {"METRICS_PORT": str(metrics_base + 1)}),
        ServiceSpec("fetcher", "fetcher", {"METRICS_PORT": str(metrics_base + 2)}),
        ServiceSpec("api", "api", {"HTTP_PORT": str(api_port), **dashboard}),
        # The dashboard (served by the api) opens its live stream on the streamer's port, from
        # whatever host name the browser used: a local stack lets any origin read the stream.
        ServiceSpec("streamer", "streamer", {"HTTP_PORT": str(streamer_port), "CORS_ORIGINS": "*"}),
        ServiceSpec("alerts", "alerts", {"METRICS_PORT": str(metrics_base + 3)}),
    ]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the whole stocktrack stack locally")
    parser.add_argument("--data-dir", default=".stack", help="where embedded servers keep their data")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "8080")))
    parser.add_argument("--streamer-port", type=int, default=int(os.environ.get("STREAMER_PORT", "8081")))
    parser.add_argument("--metrics-base-port", type=int, default=9101)
    parser.add_argument("--database", default=os.environ.get("STOCKTRACK_DB", "stocktrack"))
    args = parser.parse_args(argv)

    servers = find_or_start(Path(args.data_dir).resolve(), log=lambda m: print(f"[stack] {m}", flush=True))
    procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []
    try:
        db_url = (
            servers.postgres_url
            if os.environ.get("DATABASE_URL")
            else ensure_database(servers.postgres_url, args.database)
        )
        migrate(db_url)
        _seed_demo_history(db_url)
        base_env = {
            **os.environ,
            "REDIS_URL": servers.redis_url,
            "DATABASE_URL": db_url,
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "json"),
        }
        specs = [
            s
            for s in stack_services(args.api_port, args.streamer_port, args.metrics_base_port)
            if installed(s.module)
        ]
        for spec in specs:
            proc = subprocess.Popen(
                [sys.executable, "-m", spec.module, *spec.args],
                env={**base_env, **spec.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            procs.append((spec, proc))
        print(
            f"[stack] api:      http://127.0.0.1:{args.api_port}/  (try /v1/quotes/AAPL/latest)", flush=True
        )
        if installed("streamer"):
            print(f"[stack] streamer: http://127.0.0.1:{args.streamer_port}/v1/stream", flush=True)
        print("[stack] Ctrl-C stops everything", flush=True)
        code = _pump(procs)
        procs = []
        return code
    finally:
        _stop(procs)
        servers.close()


def _seed_demo_history(db_url: str) -> None:
    """On the simulated market, give indicators a past so signals appear within a minute."""
    if os.environ.get("PROVIDER", "sim") != "sim":
        return
    commands = {ep.name: ep for ep in entry_points(group="stocktrack.commands")}
    if "seed-sim-history" in commands:
        commands["seed-sim-history"].load()(["--database-url", db_url])


class _Output:
    """Interleaves the services' output, each line tagged with its service name."""

    def __init__(self, procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]]) -> None:
        self.sel = selectors.DefaultSelector()
        self.width = max((len(s.name) for s, _ in procs), default=0)
        for spec, proc in procs:
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            self.sel.register(proc.stdout, selectors.EVENT_READ, spec.name)

    def pump(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout=timeout):
            data = key.fileobj.read()  # type: ignore[union-attr]
            if data:
                for line in data.decode(errors="replace").splitlines():
                    print(f"{key.data:<{self.width}} | {line}", flush=True)
            elif data == b"":
                self.sel.unregister(key.fileobj)


def _pump(procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]]) -> int:
    """Show output until Ctrl-C / SIGTERM or until a service crashes; then stop all, still showing output."""
    stop = {"now": False}

    def request_stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    output = _Output(procs)
    code = 0
    while not stop["now"] and code == 0:
        output.pump(0.5)
        for spec, proc in procs:
            status = proc.poll()
            if status is not None and status != 0:
                print(f"[stack] {spec.name} exited with {status}; stopping the stack", flush=True)
                code = status
    _stop(procs, output)
    return code


def _stop(procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]], output: _Output | None = None) -> None:
    """SIGTERM everything, keep showing output while the services drain, kill stragglers."""
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and any(p.poll() is None for _, p in procs):
        if output is not None:
            output.pump(0.2)
        else:
            time.sleep(0.2)
    if output is not None:
        output.pump(0.1)
    for spec, proc in procs:
        if proc.poll() is None:
            print(f"[stack] {spec.name} did not stop in time; killing it", flush=True)
            proc.kill()
            proc.wait()
    if procs:
        print("[stack] stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
