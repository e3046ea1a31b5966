"""Stacks the tests synthesize: the bundled app and small variants of AirflowEnvironment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from openmwaa import AirflowEnvironment
from tools.cdk_app import project_app

TEST_ENV = cdk.Environment(account="123456789012", region="eu-west-1")


def bundled_stack(app: cdk.App | None = None) -> cdk.Stack:
    """The stack of app.py."""
    from app import AirflowStack

    app = app or project_app()
    return AirflowStack(app, "OpenMwaa")


def environment_stack(
    app: cdk.App | None = None, *, stack_id: str = "Test", **props: Any
) -> tuple[cdk.Stack, AirflowEnvironment]:
    """A stack with one AirflowEnvironment built from `props`."""
    app = app or project_app()
    stack = cdk.Stack(app, stack_id, env=TEST_ENV)
    return stack, AirflowEnvironment(stack, "Airflow", **props)


def deployable_stack(app: cdk.App | None = None, **props: Any) -> cdk.Stack:
    """app.py's stack shape (id OpenMwaa, environment Airflow, no fixed account or region, so
    the end-to-end test can resolve it) with other props: a variant the e2e can boot."""
    app = app or project_app()
    stack = cdk.Stack(app, "OpenMwaa")
    AirflowEnvironment(stack, "Airflow", **props)
    return stack


def isolated_vpc(stack: cdk.Stack) -> ec2.IVpc:
    """A VPC with isolated subnets only (no route out), imported by attributes as a shared
    VPC is: the own-VPC case of `private_network=True`."""
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "OwnVpc",
        vpc_id="vpc-0b1c2d3e4f5a67890",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        isolated_subnet_ids=["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
        isolated_subnet_route_table_ids=["rtb-0ccccccccccccccc1", "rtb-0ccccccccccccccc2"],
        vpc_cidr_block="10.30.0.0/16",
    )


def shared_vpc(stack: cdk.Stack) -> ec2.IVpc:
    """A VPC imported by attributes, as a shared VPC is."""
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "SharedVpc",
        vpc_id="vpc-0a1b2c3d4e5f67890",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        private_subnet_ids=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        vpc_cidr_block="10.20.0.0/16",
    )


def kms_imported_vpc_stack(app: cdk.App | None = None) -> tuple[cdk.Stack, AirflowEnvironment]:
    """A customer managed key and a VPC imported by attributes (a shared VPC)."""
    app = app or project_app()
    stack = cdk.Stack(app, "KmsImportedVpc", env=TEST_ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True, description="Airflow data key")
    vpc = shared_vpc(stack)
    env = AirflowEnvironment(stack, "Airflow", kms_key=key, vpc=vpc, environment_name="shared")
    return stack, env


def public_https_stack(app: cdk.App | None = None, **props: Any) -> cdk.Stack:
    """PUBLIC_ONLY with a custom domain in an imported hosted zone, open to one network."""
    from aws_cdk import aws_route53 as route53

    from openmwaa import WebserverAccessMode

    app = app or project_app()
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
        **props,
    )
    return stack
