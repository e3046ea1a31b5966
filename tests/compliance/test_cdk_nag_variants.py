"""cdk-nag over the variants whose resources differ: micro, public HTTPS, own VPC."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_route53 as route53

from openmwaa import AirflowEnvironment, EnvironmentClass, WebserverAccessMode
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV


def test_cdk_nag_public_https_variant_has_no_unacknowledged_finding() -> None:
    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "PublicHttps", env=TEST_ENV)
        zone = route53.HostedZone.from_hosted_zone_attributes(
            stack, "Zone", hosted_zone_id="Z0123456789ABCDEFGHIJ", zone_name="example.com"
        )
        AirflowEnvironment(
            stack,
            "Airflow",
            webserver_access_mode=WebserverAccessMode.PUBLIC_ONLY,
            domain_name="airflow.example.com",
            hosted_zone=zone,
            allowed_cidrs=["203.0.113.0/24"],
        )

    assert nag_findings(build) == []


def test_cdk_nag_micro_variant_has_no_unacknowledged_finding() -> None:
    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Micro")
        AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_MICRO)

    assert nag_findings(build) == []
