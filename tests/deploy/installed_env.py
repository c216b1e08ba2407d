"""A virtualenv holding the project the way the images hold it: built wheels, no source tree.

Every test and `make run` import the packages from editable installs, which read files straight
from the repository, so a file missing from a wheel (package data) is invisible there. Here each
package under `libs/common` and `services/` is copied out of the tree, built into a wheel and
installed (non-editable, `--no-deps`) into a fresh virtualenv, as the Dockerfile does.

Third-party dependencies are not reinstalled (that would cost minutes per run): a `.pth` line
appends the development virtualenv's site-packages *after* the new one. A plain path line in a
`.pth` file is added to `sys.path` without processing the `.pth` files found there, so the
development environment's editable-install hooks never run and the project's own packages can
only come from the wheels. `check_installed` proves both halves: every project module is loaded
from the new site-packages, and every declared requirement of every wheel is satisfied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.chart_support import REPO, service_directories

IMAGE_CHECK = REPO / "deploy" / "image_check.py"
IMAGE_PACKAGES = ("libs/common", *(f"services/{name}" for name in service_directories()))
PROJECT_MODULES = ("stocktrack_common", *service_directories())
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "tests", ".*")

CHECK_SCRIPT = r"""
import importlib, importlib.metadata as md, json, sys
from pathlib import Path
from packaging.requirements import Requirement
site = Path(sys.argv[1]).resolve()
report = {"outside": {}, "unsatisfied": []}
for module in sys.argv[2].split(","):
    path = Path(importlib.import_module(module).__file__).resolve()
    if site not in path.parents:
        report["outside"][module] = str(path)
for dist in md.distributions(path=[str(site)]):
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            report["unsatisfied"].append(f"{dist.metadata['Name']}: {line} (missing)")
            continue
        if not req.specifier.contains(version, prereleases=True):
            report["unsatisfied"].append(f"{dist.metadata['Name']}: {line} (found {version})")
print(json.dumps(report))
"""


@dataclass(frozen=True)
class InstalledEnv:
    """The virtualenv's interpreter, its bin directory and its own site-packages."""

    root: Path
    python: Path
    site_packages: Path

    @property
    def bin(self) -> Path:
        return self.python.parent

    def env(self, **values: str) -> dict[str, str]:
        """A process environment like a container's: no PYTHONPATH, the venv first on PATH."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "VIRTUAL_ENV", "REDIS_URL", "DATABASE_URL", "STREAM_PREFIX"}
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(values)
        return env


def _run(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, cwd=cwd, timeout=300)


def build_wheels(work: Path) -> list[Path]:
    """One wheel per image package, built from a copy so the repository gets no build/ litter."""
    sources = work / "src"
    wheels = work / "wheels"
    for package in IMAGE_PACKAGES:
        shutil.copytree(REPO / package, sources / Path(package).name, ignore=_COPY_IGNORE)
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        wheels,
        *(sources / Path(package).name for package in IMAGE_PACKAGES),
    )
    return sorted(wheels.glob("*.whl"))


def create(work: Path) -> InstalledEnv:
    """Build the wheels and install them into a new virtualenv under `work`."""
    wheels = build_wheels(work)
    root = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", root)
    python = root / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        *wheels,
    )
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", "")},
        ).stdout.strip()
    )
    dev_site = sysconfig.get_paths()["purelib"]
    (site_packages / "zz_third_party_from_dev_venv.pth").write_text(dev_site + "\n")
    return InstalledEnv(root, python, site_packages)


def package_files(service: str) -> list[str]:
    """Non-Python files of the service's and libs/common's packages, as deploy/check-image.sh lists them."""
    listed = subprocess.run(
        ["git", "ls-files", "--", "libs/common/stocktrack_common", f"services/{service}/{service}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    prefixes = ("libs/common/", f"services/{service}/")
    return [
        next(name.removeprefix(p) for p in prefixes if name.startswith(p))
        for name in listed
        if not name.endswith(".py")
    ]


def check_installed(installed: InstalledEnv, cwd: Path) -> dict[str, object]:
    """Where each project module is imported from, and any requirement the environment misses."""
    import json

    result = subprocess.run(
        [str(installed.python), "-c", CHECK_SCRIPT, str(installed.site_packages), ",".join(PROJECT_MODULES)],
        check=True,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=installed.env(),
        timeout=120,
    )
    report: dict[str, object] = json.loads(result.stdout)
    return report
