"""ApiAccess: the REST API (IAM on every method), the function, the parameter, the grants and
cdk-nag, on a small stack holding only the construct."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager

from openmwaa.api_access import PARAMETER_NAME_FORMAT, STAGE_NAME, ApiAccess
from openmwaa.bundled_function import FunctionPlacement
from openmwaa.cli import api_client
from openmwaa.runtime import contracts
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV
from tools.cdk_app import project_app


def build(app: cdk.App | None = None, **props: Any) -> tuple[cdk.Stack, ApiAccess, iam.Role]:
    stack = cdk.Stack(app or project_app(), "ApiAccessTest", env=TEST_ENV)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    placement = FunctionPlacement(
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        security_group=ec2.SecurityGroup(stack, "EnvSg", vpc=vpc),
        kms_key=None,
        log_retention=logs.RetentionDays.ONE_MONTH,
    )
    web = ec2.SecurityGroup(stack, "WebSg", vpc=vpc, allow_all_outbound=False)
    key = secretsmanager.Secret(stack, "MachineKey")
    arguments: dict[str, Any] = {
        "environment_name": "prod-airflow",
        "placement": placement,
        "airflow_url": "http://internal-alb.example",
        "airflow_version": "3.3.2",
        "machine_key": key,
        "web_security_group": web,
        **props,
    }
    access = ApiAccess(stack, "ApiAccess", **arguments)
    role = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    return stack, access, role


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack, access, role = build()
    access.grant_airflow_role(role, "Op")
    access.grant_lookup(role)
    return assertions.Template.from_stack(stack)


def test_every_method_uses_iam_authorization(template: assertions.Template) -> None:
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 2
    for method in methods.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["HttpMethod"] == "POST"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "RequestValidatorId" in props
    paths = {
        r["Properties"]["PathPart"]
        for r in template.find_resources("AWS::ApiGateway::Resource").values()
    }
    assert paths == {"token", "invoke", "{role}"}


def test_the_api_is_regional_throttled_traced_and_makes_no_account_role(
    template: assertions.Template,
) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}}
    )
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": STAGE_NAME,
            "TracingEnabled": True,
            "MethodSettings": assertions.Match.array_with(
                [
                    assertions.Match.object_like(
                        {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}
                    )
                ]
            ),
        },
    )
    template.resource_count_is("AWS::ApiGateway::Account", 0)
    template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator",
        {"ValidateRequestBody": True, "ValidateRequestParameters": True},
    )


def test_the_function_settings_and_secret_read(template: assertions.Template) -> None:
    [function] = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "api_access.handler.handler"
    ]
    env = function["Environment"]["Variables"]
    assert env[contracts.AIRFLOW_URL_VARIABLE] == "http://internal-alb.example"
    assert env[contracts.AIRFLOW_VERSION_VARIABLE] == "3.3.2"
    assert env[contracts.ENVIRONMENT_NAME_VARIABLE] == "prod-airflow"
    assert env[contracts.MACHINE_KEY_SECRET_VARIABLE]["Ref"].startswith("MachineKey")
    assert function["Timeout"] == 30
    text = json.dumps(template.to_json())
    assert "secretsmanager:GetSecretValue" in text


def test_the_function_may_reach_the_load_balancer(template: assertions.Template) -> None:
    rules = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if "WebSg" in json.dumps(r["Properties"]["GroupId"])
    ]
    assert sorted(r["FromPort"] for r in rules) == [80, 443]
    assert all("ApiAccessSecurityGroup" in json.dumps(r["SourceSecurityGroupId"]) for r in rules)


def test_the_parameter_names_the_api(template: assertions.Template) -> None:
    [parameter] = template.find_resources("AWS::SSM::Parameter").values()
    props = parameter["Properties"]
    assert props["Name"] == "/openmwaa/prod-airflow/api-access"
    assert props["Type"] == "String"
    value = json.dumps(props["Value"])
    for word in ("url", "airflow_version", "3.3.2", "region", "execute-api"):
        assert word in value
    assert PARAMETER_NAME_FORMAT == api_client.PARAMETER_NAME_FORMAT


def _statements(template: assertions.Template) -> list[dict[str, Any]]:
    return [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        if "Caller" in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_grant_airflow_role_grants_exactly_the_two_routes(template: assertions.Template) -> None:
    [invoke] = [s for s in _statements(template) if s["Action"] == "execute-api:Invoke"]
    resources = invoke["Resource"]
    assert len(resources) == 2
    stack = cdk.Stack()
    rendered = [json.dumps(stack.resolve(r)) for r in resources]
    assert any(f'/{STAGE_NAME}/POST/token/Op"' in r for r in rendered)
    assert any(f'/{STAGE_NAME}/POST/invoke/Op"' in r for r in rendered)
    assert all("execute-api:eu-west-1:123456789012:" in r for r in rendered)
    assert all("*" not in r for r in rendered)


def test_grant_lookup_is_get_parameter_on_the_parameter(template: assertions.Template) -> None:
    [lookup] = [s for s in _statements(template) if s["Action"] == "ssm:GetParameter"]
    text = json.dumps(lookup["Resource"])
    assert ":ssm:eu-west-1:123456789012:parameter" in text
    assert '{"Ref": "ApiAccessParameter' in text


def test_unknown_roles_are_refused() -> None:
    _, access, role = build()
    for bad in ("op", "Superuser", ""):
        with pytest.raises(ValueError, match="role must be one of Admin, Op, User, Viewer, Public"):
            access.grant_airflow_role(role, bad)


@pytest.mark.parametrize(
    ("props", "prop"),
    [
        ({"environment_name": "bad name/x"}, "environment_name"),
        ({"airflow_url": "alb.example"}, "airflow_url"),
        ({"airflow_version": "1.10.15"}, "airflow_version"),
        ({"throttling_rate_limit": 0}, "throttling_rate_limit"),
        ({"throttling_burst_limit": 0}, "throttling_burst_limit"),
    ],
)
def test_invalid_props_name_the_prop(props: dict[str, Any], prop: str) -> None:
    with pytest.raises(ValueError, match=prop):
        build(**props)


def test_without_a_web_security_group_no_rule_is_added() -> None:
    stack, _, _ = build(web_security_group=None)
    assert (
        assertions.Template.from_stack(stack).find_resources("AWS::EC2::SecurityGroupIngress") == {}
    )


def test_cdk_nag_is_clean() -> None:
    def make(app: cdk.App) -> None:
        _, access, role = build(app)
        access.grant_airflow_role(role, "Viewer")
        access.grant_lookup(role)

    findings = [f for f in nag_findings(make) if "/ApiAccess/" in f]
    assert findings == []
