"""The CodePipeline template passes cfn-lint offline and keeps its least-privilege and encryption promises.

cfn-lint also runs on a deliberately broken copy, which proves the check can fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

RunTool = Callable[..., subprocess.CompletedProcess[str]]
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deploy" / "aws" / "pipeline.yaml"


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def _role_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for role_name, role in _resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in statement:  # a conditional statement: check the branch that adds one
                    statement = statement["Fn::If"][1]
                yield role_name, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_cfn_lint_passes(run_tool: RunTool) -> None:
    result = run_tool("cfn-lint", "--format", "parseable", TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


# Two independent mistakes, each with the rule that must catch it: a reference to a resource that
# does not exist, and a property CloudFormation does not know.
MUTATIONS = [
    ("ProjectName: !Ref TestProject", "ProjectName: !Ref TestProjekt", "E1020"),
    ("EnableKeyRotation: true", "EnableKeyRotaton: true", "E3002"),
]


def test_cfn_lint_fails_on_a_broken_copy(run_tool: RunTool, tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    for old, new, _ in MUTATIONS:
        assert old in text, f"mutation target {old!r} vanished from pipeline.yaml; update this test"
        text = text.replace(old, new, 1)
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(text, encoding="utf-8")
    result = run_tool("cfn-lint", "--format", "parseable", broken)
    assert result.returncode != 0
    for _, _, rule in MUTATIONS:
        assert rule in result.stdout, f"{rule} not reported:\n{result.stdout}"


def test_stages_run_in_delivery_order(cfn_template: dict[str, Any]) -> None:
    pipeline = cfn_template["Resources"]["Pipeline"]["Properties"]
    assert [stage["Name"] for stage in pipeline["Stages"]] == [
        "Source",
        "Test",
        "Images",
        "Approve",
        "Deploy",
    ]
    source = pipeline["Stages"][0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    approve = pipeline["Stages"][3]["Actions"][0]
    assert approve["ActionTypeId"] == {
        "Category": "Approval",
        "Owner": "AWS",
        "Provider": "Manual",
        "Version": "1",
    }


def test_artifacts_are_encrypted_with_the_customer_key(cfn_template: dict[str, Any]) -> None:
    resources = cfn_template["Resources"]
    key_ref = {"Fn::GetAtt": ["ArtifactKey", "Arn"]}
    assert resources["ArtifactKey"]["Properties"]["EnableKeyRotation"] is True
    encryption = resources["ArtifactBucket"]["Properties"]["BucketEncryption"]
    rule = encryption["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_ref}
    block = resources["ArtifactBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block.values())
    store = resources["Pipeline"]["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"] == {"Id": key_ref, "Type": "KMS"}
    for name, project in _resources(cfn_template, "AWS::CodeBuild::Project").items():
        assert project["Properties"]["EncryptionKey"] == key_ref, name
    bucket_policy = resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false" for s in bucket_policy)


def test_every_stage_has_its_own_role(cfn_template: dict[str, Any]) -> None:
    roles = [
        p["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        for p in _resources(cfn_template, "AWS::CodeBuild::Project").values()
    ]
    assert len(roles) == len(set(roles)) == 3


def test_role_policies_name_actions_and_resources(cfn_template: dict[str, Any]) -> None:
    """No wildcard actions anywhere; a wildcard resource only where AWS offers nothing narrower."""
    for role_name, statement in _role_statements(cfn_template):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{role_name} grants {action}"
        if statement["Resource"] == "*":
            assert _as_list(statement["Action"]) == ["ecr:GetAuthorizationToken"], role_name


def test_only_the_image_stage_can_push_and_only_the_deploy_stage_can_reach_eks(
    cfn_template: dict[str, Any],
) -> None:
    actions_by_role: dict[str, set[str]] = {}
    for role_name, statement in _role_statements(cfn_template):
        actions_by_role.setdefault(role_name, set()).update(_as_list(statement["Action"]))
    pushers = {role for role, actions in actions_by_role.items() if "ecr:PutImage" in actions}
    assert pushers == {"ImagesBuildRole"}
    eks_users = {
        role for role, actions in actions_by_role.items() if any(a.startswith("eks:") for a in actions)
    }
    assert eks_users == {"DeployBuildRole"}
    access = cfn_template["Resources"]["DeployAccessEntry"]["Properties"]["AccessPolicies"]
    assert [policy["AccessScope"]["Type"] for policy in access] == ["namespace"]


def test_one_immutable_repository_per_service(cfn_template: dict[str, Any], service_names: list[str]) -> None:
    repositories = _resources(cfn_template, "AWS::ECR::Repository").values()
    names = {repo["Properties"]["RepositoryName"] for repo in repositories}
    assert {f"stocktrack-{service}" for service in service_names} <= names
    assert all(repo["Properties"]["ImageTagMutability"] == "IMMUTABLE" for repo in repositories)


def test_buildspecs_exist_and_parse(cfn_template: dict[str, Any]) -> None:
    for name, project in _resources(cfn_template, "AWS::CodeBuild::Project").items():
        path = REPO_ROOT / project["Properties"]["Source"]["BuildSpec"]
        assert path.is_file(), f"{name}: {path} is missing"
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert spec["version"] == 0.2, name
        assert spec["phases"]["build"]["commands"], name


def test_test_stage_runs_the_same_gates_as_ci() -> None:
    spec = yaml.safe_load((REPO_ROOT / "deploy" / "aws" / "buildspec.yml").read_text(encoding="utf-8"))
    commands = "\n".join(spec["phases"]["build"]["commands"])
    for gate in ("ruff check .", "ruff format --check .", "mypy", "pytest"):
        assert gate in commands


def test_every_build_role_can_clone_through_the_connection(cfn_template: dict[str, Any]) -> None:
    """OutputArtifactFormat CODEBUILD_CLONE_REF makes each CodeBuild project clone through the connection."""
    source = cfn_template["Resources"]["Pipeline"]["Properties"]["Stages"][0]["Actions"][0]
    assert source["Configuration"]["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
    build_roles = {
        p["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        for p in _resources(cfn_template, "AWS::CodeBuild::Project").values()
    }
    assert len(build_roles) == 3
    for role in build_roles | {"PipelineRole"}:
        grants = [
            s
            for name, s in _role_statements(cfn_template)
            if name == role and s["Resource"] == {"Ref": "ConnectionArn"}
        ]
        actions = {a for s in grants for a in _as_list(s["Action"])}
        assert {"codestar-connections:UseConnection", "codeconnections:UseConnection"} <= actions, role


def test_images_are_built_checked_and_pushed_by_the_makefile_with_unique_tags() -> None:
    spec = yaml.safe_load((REPO_ROOT / "deploy" / "aws" / "buildspec-images.yml").read_text(encoding="utf-8"))
    commands = "\n".join(spec["phases"]["build"]["commands"])
    # push-image-<service> depends on test-image-<service> (deploy/check-image.sh), which depends on the build.
    assert (
        'make push-images REQUIRE_DOCKER=1 IMAGE_REGISTRY="$ECR_REGISTRY" IMAGE_TAG="$IMAGE_TAG"' in commands
    )
    assert "docker build" not in commands


def test_deploy_stage_reads_the_environments_values_from_ssm(cfn_template: dict[str, Any]) -> None:
    spec = yaml.safe_load((REPO_ROOT / "deploy" / "aws" / "buildspec-deploy.yml").read_text(encoding="utf-8"))
    commands = "\n".join(spec["phases"]["build"]["commands"])
    assert 'aws ssm get-parameter --name "$HELM_VALUES_PARAMETER"' in commands
    assert "deploy/helm-upgrade.sh" in commands
    grants = [s for name, s in _role_statements(cfn_template) if "ssm:GetParameter" in _as_list(s["Action"])]
    assert [name for name, s in _role_statements(cfn_template) if s in grants] == ["DeployBuildRole"]
    env = cfn_template["Resources"]["DeployProject"]["Properties"]["Environment"]["EnvironmentVariables"]
    assert {"Name": "HELM_VALUES_PARAMETER", "Value": {"Ref": "HelmValuesParameter"}} in env
