"""Helpers for the pipeline checks: locate the offline linters and read CloudFormation YAML.

The linters come from requirements-dev.txt. A missing linter fails the test instead of skipping it:
a skipped check would let a broken workflow or template through unnoticed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
CFN_TEMPLATE = REPO_ROOT / "deploy" / "aws" / "pipeline.yaml"


def _tool_path(name: str) -> str:
    """Prefer the copy installed next to this interpreter, so the venv's pinned version is used."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run: pip install -r requirements-dev.txt")
    return found


@pytest.fixture
def run_tool() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(name: str, *args: str | Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool_path(name), *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !Sub, ...) into their long JSON form."""


def _construct_intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        scalar = loader.construct_scalar(node)
        value = scalar.split(".", 1) if tag_suffix == "GetAtt" else scalar
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected node for !{tag_suffix}", node.start_mark
        )
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def _load_cfn(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)
    assert isinstance(document, dict)
    return document


@pytest.fixture
def workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture
def cfn_template() -> dict[str, Any]:
    return _load_cfn(CFN_TEMPLATE)


@pytest.fixture
def service_names() -> list[str]:
    """Every deployable service: a folder under services/ holding a package of the same name."""
    services = REPO_ROOT / "services"
    return sorted(p.name for p in services.iterdir() if (p / p.name / "__init__.py").exists())
