"""The stock image is copied into the environment's ECR and every task pulls it from there."""

from __future__ import annotations

import importlib.metadata
import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_ecr_deployment
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager

from openmwaa.image_mirror import COPY_HANDLER_ID, KEPT_IMAGES, image_tag
from openmwaa.versions import DEFAULT_AIRFLOW_VERSION, default_image_name
from tests.conftest import template_of
from tests.stacks import TEST_ENV, environment_stack
from tools.cdk_app import project_app

STOCK_TAG = f"{DEFAULT_AIRFLOW_VERSION}-python3.12"
CREDENTIALS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dockerhub/openmwaa-AbCdEf"
ECR_PULL = {"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}
ECR_PUSH = {"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}


def _only(template: assertions.Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def _statements(template: assertions.Template, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def _images(template: assertions.Template) -> list[Any]:
    return [
        container["Image"]
        for task in template.find_resources("AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    ]


@pytest.fixture(scope="module")
def credentials_template() -> assertions.Template:
    app = project_app()
    stack = cdk.Stack(app, "Credentials", env=TEST_ENV)
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "DockerHub", CREDENTIALS_ARN)
    from openmwaa import AirflowEnvironment

    AirflowEnvironment(stack, "Airflow", docker_hub_credentials=secret)
    return assertions.Template.from_stack(stack)


def test_image_mirror_every_container_pulls_the_tag_from_the_repository(
    default_template: assertions.Template,
) -> None:
    repository, _ = _only(default_template, "AWS::ECR::Repository")
    images = _images(default_template)
    assert len(images) >= 10  # five components, each with its init container
    for image in images:
        rendered = json.dumps(image)
        assert {"Ref": repository} in image["Fn::Join"][1], rendered
        assert image["Fn::Join"][1][-1] == f":{STOCK_TAG}", rendered
        assert "docker.io" not in rendered and "apache/airflow" not in rendered


def test_image_mirror_copies_the_stock_image_index_into_the_repository_tag(
    default_template: assertions.Template,
) -> None:
    repository, _ = _only(default_template, "AWS::ECR::Repository")
    _, copy = _only(default_template, "Custom::CDKECRDeployment")
    properties = copy["Properties"]
    assert properties["SrcImage"] == f"docker://{default_image_name(DEFAULT_AIRFLOW_VERSION)}"
    destination = properties["DestImage"]["Fn::Join"][1]
    assert destination[0] == "docker://"
    assert {"Ref": repository} in destination
    assert destination[-1] == f":{STOCK_TAG}"
    assert properties["CopyImageIndex"] is True  # every architecture: arm64 stays possible
    assert "ImageArch" not in properties
    assert "SrcCreds" not in properties  # anonymous by default


def test_image_mirror_every_service_waits_for_the_copy(
    default_template: assertions.Template,
) -> None:
    copy, _ = _only(default_template, "Custom::CDKECRDeployment")
    services = default_template.find_resources("AWS::ECS::Service")
    assert services
    for logical_id, service in services.items():
        assert copy in service.get("DependsOn", []), logical_id


def test_image_mirror_execution_roles_pull_from_the_repository_only(
    default_template: assertions.Template,
) -> None:
    repository, _ = _only(default_template, "AWS::ECR::Repository")
    tasks = default_template.find_resources("AWS::ECS::TaskDefinition")
    assert tasks
    for task in tasks.values():
        role = task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        ecr_statements = [
            s
            for s in _statements(default_template, role)
            if any(a.startswith("ecr:") for a in _actions(s))
        ]
        pulls = [s for s in ecr_statements if _actions(s) == ECR_PULL]
        assert [s["Resource"] for s in pulls] == [{"Fn::GetAtt": [repository, "Arn"]}], role
        others = [s for s in ecr_statements if s not in pulls]
        assert [(_actions(s), s["Resource"]) for s in others] == [
            ({"ecr:GetAuthorizationToken"}, "*")
        ], role


def test_image_mirror_repository_scans_expires_and_is_deleted_with_the_stack(
    default_template: assertions.Template,
) -> None:
    _, repository = _only(default_template, "AWS::ECR::Repository")
    properties = repository["Properties"]
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert properties["ImageTagMutability"] == "MUTABLE"
    assert properties["EmptyOnDelete"] is True
    assert "RepositoryName" not in properties  # generated: no collision on a retried create
    assert "EncryptionConfiguration" not in properties  # ECR's default, AES256
    assert repository["DeletionPolicy"] == "Delete"
    [rule] = json.loads(properties["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["*"],
        "countType": "imageCountMoreThan",
        "countNumber": KEPT_IMAGES,
    }


def test_image_mirror_repository_is_encrypted_with_the_customer_key(
    kms_template: assertions.Template,
) -> None:
    _, repository = _only(kms_template, "AWS::ECR::Repository")
    key, _ = _only(kms_template, "AWS::KMS::Key")
    assert repository["Properties"]["EncryptionConfiguration"] == {
        "EncryptionType": "KMS",
        "KmsKey": {"Fn::GetAtt": [key, "Arn"]},
    }


def test_image_mirror_copy_role_has_no_wildcard_but_the_auth_token(
    default_template: assertions.Template,
) -> None:
    repository, _ = _only(default_template, "AWS::ECR::Repository")
    _, function = _only_copy_function(default_template)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = _statements(default_template, role)
    wildcards = [_actions(s) for s in statements if s["Resource"] == "*"]
    assert wildcards == [{"ecr:GetAuthorizationToken"}]
    push = [s for s in statements if _actions(s) >= ECR_PUSH]
    assert [s["Resource"] for s in push] == [{"Fn::GetAtt": [repository, "Arn"]}]
    assert not any(a.startswith("s3:") for s in statements for a in _actions(s))


def _only_copy_function(template: assertions.Template) -> tuple[str, dict[str, Any]]:
    functions = {
        logical_id: function
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
        if logical_id.startswith(COPY_HANDLER_ID.replace("::", ""))
    }
    assert len(functions) == 1, sorted(functions)
    return next(iter(functions.items()))


def test_image_mirror_copy_function_is_the_prebuilt_binary_outside_the_vpc(
    default_template: assertions.Template,
) -> None:
    _, function = _only_copy_function(default_template)
    properties = function["Properties"]
    assert properties["Runtime"] == "provided.al2023"
    assert properties["Handler"] == "bootstrap"
    assert "VpcConfig" not in properties  # it must reach Docker Hub
    assert function["Metadata"]["aws:asset:is-bundled"] is False  # no Docker at synth
    assert "LogGroup" in properties["LoggingConfig"]


def test_image_mirror_package_ships_its_lambda_prebuilt() -> None:
    """Synth copies `lambda-bin/bootstrap` out of the installed package: nothing is fetched."""
    [bundle] = (Path(cdk_ecr_deployment.__file__).parent / "_jsii").glob("*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        bootstrap = archive.getmember("package/lambda-bin/bootstrap")
    assert bootstrap.isfile() and bootstrap.size > 1_000_000


def test_image_mirror_docker_hub_credentials_are_read_by_the_copy_only(
    credentials_template: assertions.Template,
) -> None:
    _, copy = _only(credentials_template, "Custom::CDKECRDeployment")
    assert copy["Properties"]["SrcCreds"] == CREDENTIALS_ARN
    _, function = _only_copy_function(credentials_template)
    copier = function["Properties"]["Role"]["Fn::GetAtt"][0]
    reads = [
        s
        for s in _statements(credentials_template, copier)
        if "secretsmanager:GetSecretValue" in _actions(s)
    ]
    assert [s["Resource"] for s in reads] == [CREDENTIALS_ARN]
    tasks = credentials_template.find_resources("AWS::ECS::TaskDefinition")
    assert tasks
    for task in tasks.values():
        for container in task["Properties"]["ContainerDefinitions"]:
            assert "RepositoryCredentials" not in container
        role = task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
        resources = json.dumps([s["Resource"] for s in _statements(credentials_template, role)])
        assert CREDENTIALS_ARN not in resources


def test_image_mirror_is_not_built_for_a_given_image() -> None:
    template = template_of(image=ecs.ContainerImage.from_registry("example.com/airflow:custom"))
    template.resource_count_is("AWS::ECR::Repository", 0)
    template.resource_count_is("Custom::CDKECRDeployment", 0)
    assert set(_images(template)) == {"example.com/airflow:custom"}


def test_image_mirror_two_environments_in_one_stack_share_one_copy_function() -> None:
    stack, first = environment_stack()
    from openmwaa import AirflowEnvironment

    second = AirflowEnvironment(stack, "Second", environment_name="second")
    assert first.image_mirror is not None and second.image_mirror is not None
    assert first.image_mirror.copier is second.image_mirror.copier
    template = assertions.Template.from_stack(stack)
    _, function = _only_copy_function(template)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    pushed = [
        resource
        for s in _statements(template, role)
        if _actions(s) >= ECR_PUSH
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    repositories = template.find_resources("AWS::ECR::Repository")
    assert len(repositories) == 2
    assert sorted(json.dumps(r) for r in pushed) == sorted(
        json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}) for logical_id in repositories
    )


def test_image_tag_of_the_stock_image() -> None:
    assert image_tag("apache/airflow:3.3.2-python3.12") == "3.3.2-python3.12"
    assert image_tag("registry.example.com:5000/airflow:2.11") == "2.11"


@pytest.mark.parametrize("name", ["apache/airflow", "registry.example.com:5000/airflow", ":x"])
def test_fails_when_the_image_name_has_no_tag(name: str) -> None:
    with pytest.raises(ValueError, match="has no tag"):
        image_tag(name)


def test_image_mirror_dependency_allows_the_tested_version_and_no_new_major() -> None:
    from packaging.requirements import Requirement

    tested = importlib.metadata.version("cdk-ecr-deployment")
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f'"cdk-ecr-deployment=={tested}"' in pyproject, "the dev extra pins what is tested"
    runtime = [
        Requirement(line.strip().strip('",'))
        for line in pyproject.split("[project.optional-dependencies]")[0].splitlines()
        if "cdk-ecr-deployment" in line
    ]
    assert len(runtime) == 1
    assert runtime[0].specifier.contains(tested)
    assert not runtime[0].specifier.contains("5.0.0")  # its singleton's id is a contract
