"""The deploy-time check that your VPC has the endpoints a private environment needs
(`vpc_endpoints="verify"`).

A CloudFormation custom resource backed by a bundled function (`lambdas/endpoint_check`) that
reads EC2 DescribeVpcEndpoints for the VPC and fails the deploy naming each missing endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct

from .bundled_function import RUNTIME, bundled_code
from .nag_acknowledgements import acknowledge
from .nag_reasons import ENDPOINT_CHECK_FUNCTION, ENDPOINT_CHECK_ROLE, LOG_GROUP_WITHOUT_CMK

RESOURCE_TYPE = "Custom::OpenMwaaEndpointCheck"
ENDPOINT_KINDS = ("Interface", "Gateway")
TIMEOUT = Duration.minutes(5)
"""The function's time-out: DescribeVpcEndpoints page by page (each call retried on
throttling), with time left to answer FAILED."""


def endpoint_service_name(region: str, service: str) -> str:
    """An endpoint service's full name: `com.amazonaws.<region>.<service>`."""
    return f"com.amazonaws.{region}.{service}"


def route_table_ids(subnets: Sequence[ec2.ISubnet]) -> list[str] | None:
    """The route tables of `subnets`, or None when one of them does not know its own (a
    subnet imported without `route_table_id`, or `Vpc.from_vpc_attributes` without
    `*_subnet_route_table_ids`): the gateway endpoints are then checked to exist, not to be
    associated with the environment's route tables."""
    found: list[str] = []
    for subnet in subnets:
        try:
            table = subnet.route_table.route_table_id
        except RuntimeError:  # jsii: an imported subnet's route table id is undefined
            return None
        if not table:
            return None
        if table not in found:
            found.append(table)
    return found


class EndpointCheck(Construct):
    """Fails the deploy when `vpc` lacks a usable endpoint for one of `services`.

    `services` are `(short name, kind)` pairs, as `("sqs", "Interface")` or `("s3",
    "Gateway")`. An interface endpoint is usable in state `available` with private DNS on; a
    gateway endpoint in state `available` and associated with the route table of every subnet
    `subnets` selects (when the subnets know their route tables). The error names each missing
    endpoint and the two other `vpc_endpoints` modes.

    The function (`function`) runs outside the VPC: it calls the EC2 API and answers
    CloudFormation's response URL, neither of which a private VPC reaches. It may call
    `ec2:DescribeVpcEndpoints` only, and runs when the VPC, the subnets' route tables or the
    services change. Its log group keeps `log_retention` and is encrypted with `kms_key`
    when given. Make what needs the endpoints depend on this construct so that it starts only
    once they are checked.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        services: Sequence[tuple[str, str]],
        kms_key: kms.IKey | None,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        for name, kind in services:
            if kind not in ENDPOINT_KINDS:
                raise ValueError(
                    f"EndpointCheck: the kind of {name!r} is {kind!r}; it must be one of "
                    f"{', '.join(ENDPOINT_KINDS)}"
                )
        region = Stack.of(self).region
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Checks at deploy that the VPC has the endpoints Airflow needs",
        )
        """The function's role: its log group and `ec2:DescribeVpcEndpoints`."""
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ec2:DescribeVpcEndpoints"], resources=["*"])
        )
        self.log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            retention=log_retention,
            encryption_key=kms_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="endpoint_check.handler.handler",
            code=bundled_code(),
            description="Airflow environment: checks the VPC endpoints it needs at deploy",
            timeout=TIMEOUT,
            memory_size=128,
            role=self.role,
            log_group=self.log_group,
        )
        """The check's function, outside the VPC."""
        properties: dict[str, object] = {
            "Region": region,
            "VpcId": vpc.vpc_id,
            "Services": [
                {"Name": endpoint_service_name(region, name), "Kind": kind}
                for name, kind in services
            ],
        }
        selected = vpc.select_subnets(
            availability_zones=subnets.availability_zones,
            one_per_az=subnets.one_per_az,
            subnet_filters=subnets.subnet_filters,
            subnet_group_name=subnets.subnet_group_name,
            subnets=subnets.subnets,
            subnet_type=subnets.subnet_type,
        )
        tables = route_table_ids(selected.subnets)
        if tables:
            properties["RouteTableIds"] = tables
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties=properties,
        )
        """The custom resource: depend on it (or on this construct) to start after the check."""
        acknowledge(self.function, ENDPOINT_CHECK_FUNCTION)
        acknowledge(self.role, ENDPOINT_CHECK_ROLE)
        if kms_key is None:
            acknowledge(self.log_group, [LOG_GROUP_WITHOUT_CMK])
