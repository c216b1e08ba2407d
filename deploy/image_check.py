"""Checks run inside a freshly built service image before it is pushed (see deploy/check-image.sh).

    python image_check.py SERVICE [PACKAGE_FILE ...]

PACKAGE_FILE names a non-Python file of the source tree relative to its package's parent
(`api/static/dashboard/index.html`); each must be installed, since a file left out of the
wheel's package data is invisible to every editable-install test. Besides that: the service
imports, the entry point is the service's, the process is not root, the runtime carries no
installer and holds the RDS CA bundle. Prints one line per failure, exits 1 if any.

Standard library only: it runs with the image's interpreter and nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

CA_BUNDLE = Path("/etc/stocktrack/certs/rds-global-bundle.pem")
ENTRY_POINT = Path("/opt/venv/bin/stocktrack-service")


def package_file_problems(files: list[str]) -> list[str]:
    problems = []
    for name in files:
        top, _, rest = name.partition("/")
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            problems.append(f"package {top} is not installed")
            continue
        if not (Path(next(iter(spec.submodule_search_locations))) / rest).is_file():
            problems.append(f"{name} is missing from the installed package (package data)")
    return problems


def image_problems(service: str) -> list[str]:
    problems = []
    if os.getuid() == 0:
        problems.append("runs as root")
    for installer in ("pip", "setuptools"):
        if importlib.util.find_spec(installer) is not None:
            problems.append(f"{installer} is importable in the runtime image")
    if shutil.which("pip") or shutil.which("pip3"):
        problems.append("a pip command is on PATH")
    if ENTRY_POINT.resolve().name != f"stocktrack-{service}":
        problems.append(f"{ENTRY_POINT} runs {ENTRY_POINT.resolve().name}, not stocktrack-{service}")
    if not CA_BUNDLE.is_file() or "BEGIN CERTIFICATE" not in CA_BUNDLE.read_text():
        problems.append(f"{CA_BUNDLE} is missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("package_files", nargs="*")
    parser.add_argument(
        "--packages-only",
        action="store_true",
        help="check the import and the package files only (a virtualenv outside an image)",
    )
    args = parser.parse_args(argv)
    problems = []
    try:
        importlib.import_module(f"{args.service}.__main__")
    except Exception as exc:  # any import failure is the finding
        problems.append(f"cannot import {args.service}.__main__: {exc!r}")
    problems += package_file_problems(args.package_files)
    if not args.packages_only:
        problems += image_problems(args.service)
    for problem in problems:
        print(f"{args.service}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
