from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from openmwaa import AirflowEnvironment
from tests.stacks import TEST_ENV, public_https_stack
from tools.cdk_app import project_app


def public_domain_template(**props) -> Template:  # type: ignore[no-untyped-def]
    return Template.from_stack(public_https_stack(**props))


@pytest.fixture(scope="module")
def public_template() -> Template:
    return public_domain_template()


def test_web_private_only_is_an_internal_load_balancer(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
    )


def test_web_private_only_admits_the_vpc_cidr_by_default(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("load balancer"),
            "SecurityGroupIngress": [
                Match.object_like(
                    {
                        "CidrIp": {"Fn::GetAtt": [Match.string_like_regexp("Vpc"), "CidrBlock"]},
                        "FromPort": 80,
                    }
                )
            ],
        },
    )


def test_web_health_check_uses_the_api_server_health_endpoint(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/api/v2/monitor/health", "Port": 8080, "TargetType": "ip"},
    )


def test_web_public_only_is_internet_facing_with_https(public_template: Template) -> None:
    public_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    public_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "SslPolicy": Match.string_like_regexp("TLS13")},
    )
    public_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )


def test_web_custom_domain_gets_a_certificate_and_alias(public_template: Template) -> None:
    public_template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "airflow.example.com", "ValidationMethod": "DNS"},
    )
    public_template.has_resource_properties(
        "AWS::Route53::RecordSet",
        {"Name": "airflow.example.com.", "Type": "A", "HostedZoneId": "Z0123456789ABCDEFGHIJ"},
    )


def test_web_allowed_cidrs_limit_who_reaches_it(public_template: Template) -> None:
    groups = public_template.find_resources(
        "AWS::EC2::SecurityGroup",
        {"Properties": {"GroupDescription": Match.string_like_regexp("load balancer")}},
    )
    [group] = groups.values()
    cidrs = {rule["CidrIp"] for rule in group["Properties"]["SecurityGroupIngress"]}
    assert cidrs == {"203.0.113.0/24"}


def test_web_public_load_balancer_logs_access_when_region_is_known(
    public_template: Template,
) -> None:
    public_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "access_logs.s3.enabled", "Value": "true"}]
            )
        },
    )


def test_fails_when_public_without_tls() -> None:
    stack = cdk.Stack(project_app(), "Open", env=TEST_ENV)
    with pytest.raises(ValueError, match="PUBLIC_ONLY without TLS"):
        AirflowEnvironment(stack, "Airflow", webserver_access_mode="PUBLIC_ONLY")


def test_web_api_server_scales_on_cpu_and_requests() -> None:
    template = public_domain_template(max_webservers=4)
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 4}
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"TargetTrackingScalingPolicyConfiguration": Match.object_like({"TargetValue": 70})},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"TargetTrackingScalingPolicyConfiguration": Match.object_like({"TargetValue": 1000})},
    )


def test_web_load_balancer_reaches_the_api_server_port_only(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 8080,
            "ToPort": 8080,
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {
                "Fn::GetAtt": [Match.string_like_regexp("WebAccessSecurityGroup"), "GroupId"]
            },
        },
    )
