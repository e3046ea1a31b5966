"""Stacks the tests synthesize: the bundled app and small variants of AirflowEnvironment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from openmwaa import AirflowEnvironment

TEST_ENV = cdk.Environment(account="123456789012", region="eu-west-1")


def bundled_stack(app: cdk.App | None = None) -> cdk.Stack:
    """The stack of app.py."""
    from app import AirflowStack

    app = app or cdk.App()
    return AirflowStack(app, "OpenMwaa")


def environment_stack(
    app: cdk.App | None = None, *, stack_id: str = "Test", **props: Any
) -> tuple[cdk.Stack, AirflowEnvironment]:
    """A stack with one AirflowEnvironment built from `props`."""
    app = app or cdk.App()
    stack = cdk.Stack(app, stack_id, env=TEST_ENV)
    return stack, AirflowEnvironment(stack, "Airflow", **props)


def kms_imported_vpc_stack(app: cdk.App | None = None) -> tuple[cdk.Stack, AirflowEnvironment]:
    """A customer managed key and a VPC imported by attributes (a shared VPC)."""
    app = app or cdk.App()
    stack = cdk.Stack(app, "KmsImportedVpc", env=TEST_ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True, description="Airflow data key")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "SharedVpc",
        vpc_id="vpc-0a1b2c3d4e5f67890",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        private_subnet_ids=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        vpc_cidr_block="10.20.0.0/16",
    )
    env = AirflowEnvironment(stack, "Airflow", kms_key=key, vpc=vpc, environment_name="shared")
    return stack, env
