"""The PyPI mirror on CodeArtifact (`pypi_mirror`): its resources, who may read it, and the
variable that points the runtime's pip at it."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from openmwaa import AirflowEnvironment
from openmwaa.pypi_mirror import (
    DOMAIN_NAME_MAX_LENGTH,
    PYPI_CONNECTION,
    REPOSITORY_NAME,
    STORE_REPOSITORY_NAME,
    PypiMirror,
    domain_name,
)
from openmwaa.runtime import contracts
from openmwaa.runtime.package_index import Mirror, parse_mirror
from tests.conftest import template_of
from tests.stacks import TEST_ENV
from tests.unit.test_requirements_builder import build_task, container, dag_sync, env_of
from tools.cdk_app import project_app

DOMAIN_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$")
"""CodeArtifact's pattern for a domain name."""


@pytest.fixture(scope="module")
def mirror_template() -> Template:
    return template_of(pypi_mirror=True, environment_name="etl")  # type: ignore[no-untyped-call, no-any-return]


def airflow_containers(template: Template) -> list[dict[str, Any]]:
    return [
        c
        for task in template.find_resources("AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
        if contracts.COMPONENT_VARIABLE in env_of(c)
    ]


def test_domain_name_is_a_valid_domain_for_any_environment_name() -> None:
    for name in ("etl", "Prod_ETL-" * 9, "a", "x" * 80):
        found = domain_name(name, "Stack/Airflow/PypiMirror")
        assert len(found) <= DOMAIN_NAME_MAX_LENGTH
        assert DOMAIN_PATTERN.match(found), found


def test_domain_name_differs_between_stacks_of_one_environment_name() -> None:
    assert domain_name("etl", "StackA/Airflow/PypiMirror") != domain_name(
        "etl", "StackB/Airflow/PypiMirror"
    )
    assert domain_name("etl", "S/A/PypiMirror") == domain_name("etl", "S/A/PypiMirror")


def test_pypi_mirror_is_off_by_default_outside_a_private_network(default_template: Any) -> None:
    default_template.resource_count_is("AWS::CodeArtifact::Domain", 0)
    default_template.resource_count_is("AWS::CodeArtifact::Repository", 0)
    for c in airflow_containers(default_template):
        assert contracts.PYPI_MIRROR_VARIABLE not in env_of(c)


def test_pypi_mirror_creates_a_domain_a_pypi_store_and_the_repository_pip_reads(
    mirror_template: Template,
) -> None:
    [domain] = mirror_template.find_resources("AWS::CodeArtifact::Domain").values()
    assert DOMAIN_PATTERN.match(domain["Properties"]["DomainName"])
    assert "EncryptionKey" not in domain["Properties"]
    repositories = mirror_template.find_resources("AWS::CodeArtifact::Repository")
    by_name = {r["Properties"]["RepositoryName"]: (k, r) for k, r in repositories.items()}
    assert set(by_name) == {STORE_REPOSITORY_NAME, REPOSITORY_NAME}
    store_id, store = by_name[STORE_REPOSITORY_NAME]
    assert store["Properties"]["ExternalConnections"] == [PYPI_CONNECTION]
    _, repository = by_name[REPOSITORY_NAME]
    assert repository["Properties"]["Upstreams"] == [{"Fn::GetAtt": [store_id, "Name"]}]
    assert "ExternalConnections" not in repository["Properties"]


def test_pypi_mirror_is_deleted_with_the_stack(mirror_template: Template) -> None:
    for kind in ("AWS::CodeArtifact::Domain", "AWS::CodeArtifact::Repository"):
        for resource in mirror_template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == "Delete"
            assert resource["UpdateReplacePolicy"] == "Delete"


def test_pypi_mirror_domain_is_encrypted_with_the_kms_key() -> None:
    app = project_app()
    stack = cdk.Stack(app, "Mirror", env=TEST_ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    PypiMirror(stack, "PypiMirror", environment_name="etl", kms_key=key)

    Template.from_stack(stack).has_resource_properties(
        "AWS::CodeArtifact::Domain",
        {"EncryptionKey": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}},
    )


def test_pypi_mirror_variable_names_the_repository_on_every_airflow_container(
    mirror_template: Template,
) -> None:
    [domain] = mirror_template.find_resources("AWS::CodeArtifact::Domain").values()
    expected = Mirror(
        domain=domain["Properties"]["DomainName"],
        owner=TEST_ENV.account or "",
        repository=REPOSITORY_NAME,
        region=TEST_ENV.region or "",
    )
    containers = airflow_containers(mirror_template)
    assert containers
    for c in containers:
        assert parse_mirror(env_of(c)[contracts.PYPI_MIRROR_VARIABLE]) == expected, c["Name"]


def test_pypi_mirror_variable_reaches_the_build_but_not_its_key(
    mirror_template: Template,
) -> None:
    _, props = build_task(mirror_template)
    build = env_of(container(props, contracts.BUILD_REQUIREMENTS))
    assert parse_mirror(build[contracts.PYPI_MIRROR_VARIABLE]).repository == REPOSITORY_NAME
    assert contracts.PYPI_MIRROR_VARIABLE not in contracts.REQUIREMENTS_KEY_VARIABLES
    assert (
        contracts.PYPI_MIRROR_VARIABLE not in dag_sync(mirror_template)["Environment"]["Variables"]
    )


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _policies_granting(template: Template, action: str) -> list[dict[str, Any]]:
    return [
        p["Properties"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if any(action in _actions(s) for s in p["Properties"]["PolicyDocument"]["Statement"])
    ]


def test_pypi_mirror_is_readable_by_the_execution_role_and_the_build_task_role(
    mirror_template: Template,
) -> None:
    roles = {
        ref["Ref"]
        for policy in _policies_granting(mirror_template, "codeartifact:GetAuthorizationToken")
        for ref in policy["Roles"]
    }
    assert len(roles) == 2
    assert any(r.startswith("AirflowExecutionRole") for r in roles), roles
    assert any(r.startswith("AirflowRequirementsBuilderTaskRole") for r in roles), roles


def test_pypi_mirror_grant_read_scopes_every_action() -> None:
    app = project_app()
    stack = cdk.Stack(app, "Mirror", env=TEST_ENV)
    mirror = PypiMirror(stack, "PypiMirror", environment_name="etl", kms_key=None)
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    mirror.grant_read(role)

    [policy] = Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
    by_action = {
        action: statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in _actions(statement)
    }

    def targets(action: str) -> list[str]:
        resource = by_action[action]["Resource"]
        resources = resource if isinstance(resource, list) else [resource]
        return sorted(re.sub(r"[0-9A-F]{8}$", "", r["Fn::GetAtt"][0]) for r in resources)

    assert targets("codeartifact:GetAuthorizationToken") == ["PypiMirrorDomain"]
    assert targets("codeartifact:ReadFromRepository") == [
        "PypiMirrorRepository",
        "PypiMirrorStore",
    ]
    assert targets("codeartifact:GetRepositoryEndpoint") == targets(
        "codeartifact:ReadFromRepository"
    )
    token = by_action["sts:GetServiceBearerToken"]
    assert token["Resource"] == "*"
    assert token["Condition"] == {
        "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
    }


def test_services_and_the_initial_sync_wait_for_the_mirror(mirror_template: Template) -> None:
    repositories = set(mirror_template.find_resources("AWS::CodeArtifact::Repository"))
    services = mirror_template.find_resources("AWS::ECS::Service")
    assert services
    for logical_id, service in services.items():
        assert repositories <= set(service.get("DependsOn", [])), logical_id


def test_pypi_mirror_with_a_kms_key_has_no_unacknowledged_nag_finding() -> None:
    from tests.compliance.nag import nag_findings

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Mirror", env=TEST_ENV)
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        AirflowEnvironment(stack, "Airflow", pypi_mirror=True, kms_key=key)

    assert nag_findings(build) == []
