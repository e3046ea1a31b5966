"""API access as part of the environment: built by default, off on request, never with
Identity Center, reachable behind a public load balancer, and the environment's grant."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match, Template

from openmwaa import AirflowEnvironment, SignIn
from tests.stacks import environment_stack, public_https_stack
from tools.cdk_app import project_app

API = "AWS::ApiGateway::RestApi"


def test_every_environment_has_api_access_by_default() -> None:
    stack, env = environment_stack()
    assert env.api_access is not None
    Template.from_stack(stack).resource_count_is(API, 1)


def test_api_access_false_builds_none_and_the_grant_says_why() -> None:
    stack, env = environment_stack(api_access=False)
    assert env.api_access is None
    Template.from_stack(stack).resource_count_is(API, 0)
    role = iam.Role(stack, "Ci", assumed_by=iam.AccountRootPrincipal())
    with pytest.raises(ValueError, match="grant_airflow_role: this environment has no API access"):
        env.grant_airflow_role(role, "Op")


def test_identity_center_has_no_api_access() -> None:
    from aws_cdk import aws_certificatemanager as acm

    app = project_app()
    stack = cdk.Stack(app, "Sso", env={"account": "111111111111", "region": "eu-west-1"})
    env = AirflowEnvironment(
        stack,
        "Airflow",
        domain_name="airflow.example.com",
        certificate=acm.Certificate.from_certificate_arn(
            stack, "Cert", "arn:aws:acm:eu-west-1:111111111111:certificate/abc"
        ),
        sign_in=SignIn.iam_identity_center(
            saml_metadata_url="https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/abc",
            roles={"g-1": "Op"},
        ),
    )
    assert env.api_access is None
    Template.from_stack(stack).resource_count_is(API, 0)


def test_api_access_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="api_access: got 'yes'; allowed: True, False"):
        environment_stack(api_access="yes")


def test_the_environment_grants_one_role_through_its_api_access() -> None:
    stack, env = environment_stack()
    role = iam.Role(stack, "Ci", assumed_by=iam.AccountRootPrincipal())
    env.grant_airflow_role(role, "Viewer")
    policies = Template.from_stack(stack).find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("^Ci")}]}},
    )
    [policy] = policies.values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    resources = json.dumps(statement["Resource"])
    assert "/POST/token/Viewer" in resources and "/POST/invoke/Viewer" in resources
    assert "Op" not in resources.replace("Open", "")


def test_a_public_load_balancer_admits_the_nat_gateways_on_its_listener_port() -> None:
    template = Template.from_stack(public_https_stack())
    eips = template.find_resources("AWS::EC2::EIP")
    assert eips
    [group_id] = template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("load balancer")}},
    )
    nat_rules = [
        ingress["Properties"]
        for ingress in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if ingress["Properties"].get("Description") == "API access function through the NAT gateway"
    ]
    assert len(nat_rules) == len(eips)
    for rule in nat_rules:
        assert rule["FromPort"] == rule["ToPort"] == 443
        assert rule["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
        [_, [address, suffix]] = rule["CidrIp"]["Fn::Join"]
        assert address["Fn::GetAtt"][0] in eips and address["Fn::GetAtt"][1] == "PublicIp"
        assert suffix == "/32"


def test_a_public_load_balancer_in_a_given_vpc_warns_to_admit_its_nat() -> None:
    from aws_cdk import aws_certificatemanager as acm

    from openmwaa import WebserverAccessMode

    app = project_app()
    stack = cdk.Stack(app, "Given", env={"account": "111111111111", "region": "eu-west-1"})
    AirflowEnvironment(
        stack,
        "Airflow",
        vpc=ec2.Vpc(stack, "Given", max_azs=2),
        webserver_access_mode=WebserverAccessMode.PUBLIC_ONLY,
        certificate=acm.Certificate.from_certificate_arn(
            stack, "Cert", "arn:aws:acm:eu-west-1:111111111111:certificate/abc"
        ),
        domain_name="airflow.example.com",
        allowed_cidrs=["203.0.113.0/24"],
    )
    warnings = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("NAT gateways' public addresses to allowed_cidrs")
    )
    assert len(warnings) == 1
