"""A Lambda function running code this library ships under `lambdas/`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from aws_cdk import Duration, RemovalPolicy, SymlinkFollowMode
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct

from .assets import lambda_code_dir
from .nag_acknowledgements import acknowledge
from .nag_reasons import BUNDLED_FUNCTION, LOG_GROUP_WITHOUT_CMK

RUNTIME = lambda_.Runtime.PYTHON_3_14


@dataclass(frozen=True)
class FunctionPlacement:
    """Where a bundled function runs and how its data is protected: the environment's
    private subnets and security group (or, with `in_vpc=False`, outside any VPC), its
    `kms_key` (or none) and its log retention."""

    vpc: ec2.IVpc
    vpc_subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup
    kms_key: kms.IKey | None
    log_retention: logs.RetentionDays
    in_vpc: bool = True
    """False: the function runs outside the VPC (it reaches nothing in it)."""

    def outside_vpc(self) -> FunctionPlacement:
        """The same protection, outside the VPC: for a function that reaches nothing in it."""
        return replace(self, in_vpc=False)


def bundled_code() -> lambda_.Code:
    """The shipped `lambdas/` folder as one asset: every bundled function shares it.

    Plain Python using only what the Lambda runtime ships (boto3), so no bundling, no
    Docker; the asset hash changes only when the code does.
    """
    return lambda_.Code.from_asset(
        str(lambda_code_dir()),
        exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache"],
        # `openmwaa_contracts.py` links to the runtime's contracts in a checkout: ship its content.
        follow_symlinks=SymlinkFollowMode.ALWAYS,
    )


def bundled_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    timeout: Duration,
    memory_size: int,
    environment: Mapping[str, str],
    placement: FunctionPlacement,
    filesystem: lambda_.FileSystem | None = None,
) -> lambda_.Function:
    """A function on `RUNTIME` (arm64) in the environment's private subnets (or outside the
    VPC, as `placement` says), with its own
    log group (retention, `kms_key`) and environment variables encrypted with `kms_key`;
    `filesystem` mounts EFS (the DAG sync).
    It acknowledges the findings every such function has; the caller acknowledges the
    findings of what it grants the function."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=placement.log_retention,
        encryption_key=placement.kms_key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    function = lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=bundled_code(),
        description=description,
        timeout=timeout,
        memory_size=memory_size,
        environment=dict(environment),
        environment_encryption=placement.kms_key,
        vpc=placement.vpc if placement.in_vpc else None,
        vpc_subnets=placement.vpc_subnets if placement.in_vpc else None,
        security_groups=[placement.security_group] if placement.in_vpc else None,
        log_group=log_group,
        filesystem=filesystem,
    )
    acknowledge(function, BUNDLED_FUNCTION)
    if placement.kms_key is None:
        acknowledge(log_group, [LOG_GROUP_WITHOUT_CMK])
    return function
