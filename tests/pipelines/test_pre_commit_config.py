"""The pre-commit hooks are valid, pinned, and run the same checks as `make lint`."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

RunTool = Callable[..., subprocess.CompletedProcess[str]]
CONFIG = Path(__file__).resolve().parents[2] / ".pre-commit-config.yaml"


def test_config_validates(run_tool: RunTool) -> None:
    result = run_tool("pre-commit", "validate-config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_fails_on_a_broken_copy(run_tool: RunTool, tmp_path: Path) -> None:
    broken = tmp_path / ".pre-commit-config.yaml"
    broken.write_text(CONFIG.read_text().replace("    rev: v", "    revision: v", 1))
    result = run_tool("pre-commit", "validate-config", broken)
    assert result.returncode != 0


def test_remote_hooks_are_pinned_to_release_tags() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    remote = [repo for repo in config["repos"] if repo["repo"] != "local"]
    assert remote
    for repo in remote:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", repo["rev"]), repo["repo"]


def test_lint_hooks_match_make_lint() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy"} <= hooks.keys()
    # mypy must check the whole configured tree (mypy.ini `files`), not only the staged files.
    assert hooks["mypy"]["pass_filenames"] is False
    assert hooks["mypy"]["entry"] == "mypy"
