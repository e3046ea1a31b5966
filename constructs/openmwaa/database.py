"""The Airflow metadata database: Aurora PostgreSQL Serverless v2."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds

from constructs import Construct

from .environment_class import EnvironmentClassSpec

ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_9
DATABASE_NAME = "airflow"
DATABASE_USER = "airflow"
BACKUP_RETENTION = Duration.days(7)


class MetadataDatabase(Construct):
    """Aurora PostgreSQL Serverless v2 holding Airflow's metadata.

    Capacity (ACUs) follows the environment class. Storage encrypted (with `kms_key` when
    given), credentials generated into Secrets Manager (`secret`), IAM authentication on,
    backups kept 7 days, deletion protection on, PostgreSQL logs exported to CloudWatch,
    Performance Insights and enhanced monitoring on, and a final snapshot when the stack
    deletes it (`removal_policy` default SNAPSHOT). Reachable only from the environment's
    security group, in its private subnets. The cluster identifier is
    `<environment_name>-metadata` so its PostgreSQL log group can be created (encrypted, with
    retention) before RDS would create it unencrypted and kept forever.
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
        removal_policy: RemovalPolicy = RemovalPolicy.SNAPSHOT,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_identifier = f"{environment_name.lower().replace('_', '-')}-metadata"
        self.log_group = logs.LogGroup(
            self,
            "PostgresqlLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_identifier}/postgresql",
            retention=log_retention,
            encryption_key=kms_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
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
            deletion_protection=True,
            copy_tags_to_snapshot=True,
            cluster_identifier=cluster_identifier,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            removal_policy=removal_policy,
        )
        self.cluster.node.add_dependency(self.log_group)
        if self.cluster.secret is None:
            raise RuntimeError("the cluster was created without a generated secret")
        self.secret = self.cluster.secret
