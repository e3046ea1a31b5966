"""The environment's network: a VPC (new or yours) and its self-referencing security group."""

from __future__ import annotations

from aws_cdk import Annotations, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from constructs import Construct

from . import defaults
from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    INLINE_ROLE_POLICY,
    LOG_GROUP_WITHOUT_CMK,
    PUBLIC_SUBNET_ROUTE,
    SELF_REFERENCING_RULE,
)


class AirflowNetwork(Construct):
    """Where every Airflow component, the database, EFS and the Lambdas live.

    With `vpc=None` it creates a VPC across two availability zones, with a public and a
    private subnet in each, `nat_gateways` NAT gateways (default 1; 2 for zone-level
    resilience of outbound traffic), VPC flow logs (all traffic, to an encrypted log group
    kept `log_retention`, default one year, removed as `removal_policy` says, default
    RETAIN_ON_UPDATE_OR_DELETE) and an S3 gateway endpoint on the private subnets' route
    tables (`s3_endpoint`; free, where NAT charges $0.045 per GB processed: image layers, the
    DAG sync's reads and your DAGs' S3 traffic in the region skip NAT). Its policy is the default
    (any bucket): ECR serves image layers from S3 buckets AWS owns, and DAGs read and write
    your own buckets; a policy naming buckets would break both. With your own `vpc` (shared
    VPCs included) it creates nothing in it but the security group (`s3_endpoint` is None:
    your VPC's routes are yours), and places resources in `vpc_subnets` (default: the
    private subnets).

    With `private=True` (the `private_network` prop) the new VPC has isolated subnets only,
    one /20 per zone: no public subnet, internet gateway, NAT gateway or Elastic IP, so no
    route leads out of it; flow logs stay. The AWS services the environment calls are reached
    through VPC endpoints (`vpc_endpoints.EnvironmentEndpoints`, built by the environment).
    With your own `vpc`, `vpc_subnets` then defaults to its isolated subnets.

    The security group allows all traffic from itself, the rule the MWAA documentation
    requires: components talk to each other (api-server, database, EFS) on several ports.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        nat_gateways: int | None = None,
        private: bool = False,
        kms_key: kms.IKey | None = None,
        log_retention: logs.RetentionDays = defaults.FLOW_LOG_RETENTION,
        removal_policy: RemovalPolicy = defaults.REMOVAL_POLICY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.created_vpc = vpc is None
        self.private = private
        """True in a private network: no route out of the VPC, AWS reached through endpoints."""
        self.s3_endpoint: ec2.GatewayVpcEndpoint | None = None
        """The new VPC's S3 gateway endpoint; None with your own `vpc` and in a private
        network (whose endpoints are `env.endpoints`)."""
        if private:
            nat_gateways = 0
        elif nat_gateways is None:
            nat_gateways = defaults.NAT_GATEWAYS
        self.vpc: ec2.IVpc = (
            vpc
            if vpc is not None
            else self._new_vpc(
                nat_gateways,
                kms_key,
                log_retention,
                removal_policy,
            )
        )
        self.subnets: ec2.SubnetSelection = vpc_subnets or ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
            if private
            else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            description="Airflow environment: all components; allows all traffic from itself",
            allow_all_outbound=True,
        )
        Annotations.of(self.security_group).acknowledge_warning(
            "@aws-cdk/aws-ec2:ipv4IgnoreEgressRule",
            "Egress is open to all, so the per-peer egress rules CDK adds for EFS and the "
            "load balancer are redundant and rightly dropped.",
        )
        self.security_group.add_ingress_rule(
            self.security_group,
            ec2.Port.all_traffic(),
            "All traffic between the environment's components (self-referencing, as MWAA)",
        )
        acknowledge(self.security_group, [SELF_REFERENCING_RULE])

    def _new_vpc(
        self,
        nat_gateways: int,
        kms_key: kms.IKey | None,
        retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> ec2.Vpc:
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=kms_key,
            retention=retention,
            removal_policy=removal_policy,
        )
        flow_log_role = iam.Role(
            self,
            "FlowLogsRole",
            assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com"),
            description="Lets VPC flow logs write to the environment's flow log group",
        )
        acknowledge(flow_log_role, [INLINE_ROLE_POLICY])
        if kms_key is None:
            acknowledge(flow_log_group, [LOG_GROUP_WITHOUT_CMK])
        subnets = (
            [
                ec2.SubnetConfiguration(
                    name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20
                )
            ]
            if self.private
            else [
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ]
        )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            restrict_default_security_group=True,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        flow_log_group, flow_log_role
                    ),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        if self.private:
            return vpc
        acknowledge(vpc, [PUBLIC_SUBNET_ROUTE])
        self.s3_endpoint = vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
        )
        return vpc
