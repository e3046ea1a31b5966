"""The Airflow metadata database: Aurora PostgreSQL Serverless v2."""

from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import custom_resources as cr

from constructs import Construct, IDependable

from .environment_class import EnvironmentClassSpec
from .naming import database_cluster_identifier

DATABASE_NAME = "airflow"
DATABASE_USER = "airflow"
BACKUP_RETENTION = Duration.days(7)
ENGINE_MAJOR_VERSION = 16

_MINOR_VERSION_ATTRIBUTE = re.compile(rf"^VER_{ENGINE_MAJOR_VERSION}_(\d+)$")


def newest_engine_version_name() -> str:
    """The `rds.AuroraPostgresEngineVersion` attribute of the newest PostgreSQL 16 minor
    this aws-cdk-lib knows (`VER_16_<minor>`; Limitless variants excluded)."""
    minors = {
        int(match.group(1)): name
        for name in dir(rds.AuroraPostgresEngineVersion)
        if (match := _MINOR_VERSION_ATTRIBUTE.match(name))
    }
    return minors[max(minors)]


def newest_engine_version() -> rds.AuroraPostgresEngineVersion:
    """The newest Aurora PostgreSQL 16 minor version in the installed aws-cdk-lib.

    Aurora retires old minor versions, so a pinned minor eventually cannot be created;
    following aws-cdk-lib keeps new environments on a version Aurora still offers.
    """
    version: rds.AuroraPostgresEngineVersion = getattr(
        rds.AuroraPostgresEngineVersion, newest_engine_version_name()
    )
    return version


class MetadataDatabase(Construct):
    """Aurora PostgreSQL Serverless v2 holding Airflow's metadata.

    Capacity (ACUs) follows the environment class. Engine: `engine_version`, default the
    newest Aurora PostgreSQL 16 minor version of the installed aws-cdk-lib. Storage encrypted
    (with `kms_key` when given), credentials generated into Secrets Manager (`secret`), IAM
    authentication on, backups kept 7 days, PostgreSQL logs exported to CloudWatch,
    Performance Insights and enhanced monitoring on, and a final snapshot whenever
    CloudFormation deletes it (stack delete, replacement, create rollback).

    Deletion protection is not set on the cluster resource: a cluster protected at create
    could not be deleted by the rollback of a failed first create (ROLLBACK_FAILED). Call
    `protect_after(...)` instead; it sets the protection once everything else is created.

    Reachable only from the environment's security group, in its private subnets. The
    cluster identifier is `<environment label>-metadata` (see `naming`) so its PostgreSQL
    log group can be created (encrypted, with retention, `log_removal_policy`) before RDS
    would create it unencrypted and kept forever.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        spec: EnvironmentClassSpec,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        kms_key: kms.IKey | None = None,
        engine_version: rds.AuroraPostgresEngineVersion | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        super().__init__(scope, construct_id)
        self._vpc = vpc
        self._vpc_subnets = vpc_subnets
        self._kms_key = kms_key
        self._log_retention = log_retention
        self.cluster_identifier = database_cluster_identifier(environment_name)
        self.engine_version = engine_version or newest_engine_version()
        self.log_group = logs.LogGroup(
            self,
            "PostgresqlLogs",
            log_group_name=f"/aws/rds/cluster/{self.cluster_identifier}/postgresql",
            retention=log_retention,
            encryption_key=kms_key,
            removal_policy=log_removal_policy,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=self.engine_version),
            writer=rds.ClusterInstance.serverless_v2(
                "Writer",
                enable_performance_insights=True,
                performance_insight_encryption_key=kms_key,
                auto_minor_version_upgrade=True,
            ),
            serverless_v2_min_capacity=spec.db_min_acu,
            serverless_v2_max_capacity=spec.db_max_acu,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[security_group],
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(
                DATABASE_USER, encryption_key=kms_key
            ),
            storage_encrypted=True,
            storage_encryption_key=kms_key,
            iam_authentication=True,
            backup=rds.BackupProps(retention=BACKUP_RETENTION),
            copy_tags_to_snapshot=True,
            cluster_identifier=self.cluster_identifier,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.cluster.node.add_dependency(self.log_group)
        if self.cluster.secret is None:
            raise RuntimeError("the cluster was created without a generated secret")
        self.secret = self.cluster.secret
        self.deletion_protection: cr.AwsCustomResource | None = None
        self.deletion_protection_enabled = False
        self.deletion_protection_log_group: logs.LogGroup | None = None

    def protect_after(self, *dependencies: IDependable, enabled: bool = True) -> None:
        """Set the cluster's deletion protection to `enabled` after `dependencies`.

        A custom resource calls `rds:ModifyDBCluster` (DeletionProtection, ApplyImmediately)
        on create and whenever `enabled` changes. Made to depend on the rest of the
        environment, it runs last in the first create, so a failure anywhere before it rolls
        back a cluster that is not yet protected. It does nothing on delete: while
        protection is on, deleting the stack fails at the cluster; deploy with
        `enabled=False` first. Its only permission is ModifyDBCluster on this cluster.
        """
        if self.deletion_protection is not None:
            raise RuntimeError("protect_after was already called")
        log_group = logs.LogGroup(
            self,
            "DeletionProtectionLogs",
            retention=self._log_retention,
            encryption_key=self._kms_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        call = cr.AwsSdkCall(
            service="RDS",
            action="modifyDBCluster",
            parameters={
                "DBClusterIdentifier": self.cluster.cluster_identifier,
                "DeletionProtection": enabled,
                "ApplyImmediately": True,
            },
            physical_resource_id=cr.PhysicalResourceId.of(
                f"{self.cluster_identifier}-deletion-protection"
            ),
            output_paths=["DBCluster.DeletionProtection"],
        )
        self.deletion_protection = cr.AwsCustomResource(
            self,
            "DeletionProtection",
            resource_type="Custom::DBClusterDeletionProtection",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["rds:ModifyDBCluster"],
                        resources=[self.cluster.cluster_arn],
                    )
                ]
            ),
            install_latest_aws_sdk=False,
            log_group=log_group,
            vpc=self._vpc,
            vpc_subnets=self._vpc_subnets,
        )
        self.deletion_protection.node.add_dependency(self.cluster, *dependencies)
        self.deletion_protection_enabled = enabled
        self.deletion_protection_log_group = log_group

    @property
    def deletion_protection_provider(self) -> Construct | None:
        """The stack's shared Lambda behind every `AwsCustomResource`, once created."""
        provider_id = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
        child = Stack.of(self).node.try_find_child(provider_id)
        return child if isinstance(child, Construct) else None
