"""deploy/helm-upgrade.sh, the rollout both pipelines run, refuses the example values.

A stand-in `helm` on PATH renders the chart with the Helm SDK (the real renderer, no binary or
cluster needed) for `helm template`, and records the arguments of `helm upgrade`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "helm-upgrade.sh"

FAKE_HELM = r"""
import json, sys
from pathlib import Path
import helm_python as helm, yaml
args = sys.argv[1:]
if args[0] == "upgrade":
    Path(sys.argv[0]).with_name("upgrade-args.json").write_text(json.dumps(args))
    sys.exit(0)
assert args[0] == "template", args
release, chart, rest = args[1], args[2], args[3:]
values, namespace = {}, "default"
def merge(into, new):
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            merge(into[k], v)
        else:
            into[k] = v
i = 0
while i < len(rest):
    if rest[i] == "--values":
        merge(values, yaml.safe_load(Path(rest[i + 1]).read_text()) or {})
    elif rest[i] == "--set-string":
        key, value = rest[i + 1].split("=", 1)
        *parents, leaf = key.split(".")
        node = values
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    elif rest[i] == "--namespace":
        namespace = rest[i + 1]
    i += 2
with helm.Chart.load(chart) as c:
    for path, text in sorted(c.render(values, name=release, namespace=namespace, is_install=True).items()):
        print(text)
"""

ENVIRONMENT_VALUES = {
    "image": {"registry": "210987654321.dkr.ecr.eu-central-1.amazonaws.com"},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::210987654321:role/app"}},
    "ingress": {
        "host": "prices.acme.test",
        "annotations": {
            "alb.ingress.kubernetes.io/certificate-arn": "arn:aws:acm:eu-central-1:210987654321:certificate/5f1e"
        },
    },
    "cloudwatch": {
        "region": "eu-central-1",
        "fluentBit": {
            "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::210987654321:role/fb"}
        },
        "agent": {
            "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::210987654321:role/cw"}
        },
    },
}


def _run(tmp_path: Path, values: dict[str, object]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helm = bin_dir / "helm"
    helm.write_text(f"#!{sys.executable}\n{FAKE_HELM}")
    helm.chmod(0o755)
    values_file = tmp_path / "values-environment.yaml"
    values_file.write_text(yaml.safe_dump(values))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [
            str(SCRIPT),
            "stocktrack",
            "stocktrack",
            str(values_file),
            "210987654321.dkr.ecr.eu-central-1.amazonaws.com",
            "abc-gh1.1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_committed_examples_alone_are_refused(tmp_path: Path) -> None:
    result = _run(tmp_path, {"config": {"logLevel": "INFO"}})
    assert result.returncode != 0
    assert "123456789012" in result.stderr
    assert not (tmp_path / "bin" / "upgrade-args.json").exists()


def test_an_environment_file_without_examples_is_rolled_out_atomically(tmp_path: Path) -> None:
    result = _run(tmp_path, ENVIRONMENT_VALUES)
    assert result.returncode == 0, result.stderr[-3000:]
    args = yaml.safe_load((tmp_path / "bin" / "upgrade-args.json").read_text())
    assert args[:4] == ["upgrade", "--install", "stocktrack", "deploy/helm/stocktrack"]
    assert "--atomic" in args
    assert args[args.index("--values") + 1] == "deploy/helm/values-production.yaml"
    assert "image.tag=abc-gh1.1" in args
