"""The Airflow metadata database: Aurora PostgreSQL Serverless v2."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr

from constructs import Construct, IDependable

from . import defaults
from .environment_class import EnvironmentClassSpec
from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    CUSTOM_RESOURCE_PROVIDER,
    DATABASE_BACKUP,
    DATABASE_SECRET_ROTATION,
    DELETION_PROTECTION_OUTSIDE_VPC,
    DELETION_PROTECTION_POLICY,
    LOG_GROUP_WITHOUT_CMK,
    RDS_MONITORING_ROLE,
    SECRET_WITHOUT_CMK,
    database_deletion_protection,
)
from .naming import database_cluster_identifier

DATABASE_NAME = "airflow"
DATABASE_USER = "airflow"
BACKUP_RETENTION = Duration.days(7)
ENGINE_MAJOR_VERSION = 16

OWNED_DATABASE_PROPS: dict[str, str] = {
    "engine": "use database_engine_version",
    "vpc": "the environment's network",
    "vpc_subnets": "the environment's network",
    "security_groups": "the environment's security group",
    "subnet_group": "the environment's network",
    "default_database_name": "Airflow's database, named by the runtime",
    "credentials": "generated into Secrets Manager, read by the runtime",
    "storage_encrypted": "always on",
    "storage_encryption_key": "use kms_key",
    "cluster_identifier": "derived from environment_name (its log group is created first)",
    "cloudwatch_logs_exports": "postgresql, to the log group the environment creates",
    "removal_policy": "always a final snapshot",
    "deletion_protection": "use deletion_protection",
    "instances": "the writer is sized by the class (override writer instead)",
    "instance_props": "the writer is sized by the class (override writer instead)",
}
"""`rds.DatabaseCluster` settings `database_props` cannot override, and why."""

_MINOR_VERSION_ATTRIBUTE = re.compile(rf"^VER_{ENGINE_MAJOR_VERSION}_(\d+)$")

AUTO_PAUSE_WARNING_ID = "openmwaa:databaseAutoPause"
AUTO_PAUSE_MINIMUM_MINORS: dict[int, int] = {13: 15, 14: 12, 15: 7, 16: 3}
"""The first minor version of each Aurora PostgreSQL major that scales to 0 ACU and pauses
(Aurora Serverless v2 capacity docs; aws-cdk-lib's `AuroraPostgresEngineVersion.of` uses the
same ranges); every major above 16 can."""
_VERSION = re.compile(r"^(\d+)\.(\d+)")


def supports_auto_pause(full_version: str) -> bool:
    """Whether Aurora PostgreSQL `full_version` (e.g. "16.3") can scale to 0 ACU and pause:
    13.15+, 14.12+, 15.7+, 16.3+ and every later major."""
    match = _VERSION.match(full_version)
    if match is None:
        return False
    major, minor = int(match.group(1)), int(match.group(2))
    if major > max(AUTO_PAUSE_MINIMUM_MINORS):
        return True
    first = AUTO_PAUSE_MINIMUM_MINORS.get(major)
    return first is not None and minor >= first


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

    Capacity (ACUs) follows the environment class, with a minimum of 0: Aurora pauses the
    instance after `defaults.DATABASE_AUTO_PAUSE` (5 minutes) without connections and resumes
    it at the next connection (about 15 s), so a paused environment's database bills storage
    only (`auto_pause`). A running environment keeps its connections open, so its database
    never pauses. Engines before Aurora PostgreSQL 13.15, 14.12, 15.7 and 16.3 cannot: they
    keep the class's minimum, and synth warns. Engine: `engine_version`, default the
    newest Aurora PostgreSQL 16 minor version of the installed aws-cdk-lib. Storage encrypted
    (with `kms_key` when given), credentials generated into Secrets Manager (`secret`), IAM
    authentication on, backups kept 7 days, PostgreSQL logs exported to CloudWatch,
    Performance Insights and enhanced monitoring on, and a final snapshot whenever
    CloudFormation deletes it (stack delete, replacement, create rollback).

    Deletion protection is not set on the cluster resource: a cluster protected at create
    could not be deleted by the rollback of a failed first create (ROLLBACK_FAILED). Call
    `protect_after(...)` instead; it sets the protection once everything else is created.

    `database_props` (`rds.DatabaseCluster` keyword arguments) overrides the tunable settings
    above (capacity, backups, maintenance window, monitoring...); validation refuses the
    `OWNED_DATABASE_PROPS`.

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
        database_props: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._kms_key = kms_key
        self._log_retention = log_retention
        self.cluster_identifier = database_cluster_identifier(environment_name)
        self.engine_version = engine_version or newest_engine_version()
        self.auto_pause = self._auto_pause(spec, database_props or {})
        """How long the database must have no connection before Aurora pauses it; None when
        it never pauses (an engine version without 0 ACU, or a minimum capacity given)."""
        self.log_group = logs.LogGroup(
            self,
            "PostgresqlLogs",
            log_group_name=f"/aws/rds/cluster/{self.cluster_identifier}/postgresql",
            retention=log_retention,
            encryption_key=kms_key,
            removal_policy=log_removal_policy,
        )
        tunable: dict[str, Any] = dict(
            writer=rds.ClusterInstance.serverless_v2(
                "Writer",
                enable_performance_insights=True,
                performance_insight_encryption_key=kms_key,
                auto_minor_version_upgrade=True,
            ),
            serverless_v2_min_capacity=0 if self.auto_pause is not None else spec.db_min_acu,
            serverless_v2_max_capacity=spec.db_max_acu,
            iam_authentication=True,
            backup=rds.BackupProps(retention=BACKUP_RETENTION),
            copy_tags_to_snapshot=True,
            monitoring_interval=Duration.seconds(60),
        )
        if self.auto_pause is not None:
            tunable["serverless_v2_auto_pause_duration"] = self.auto_pause
        owned: dict[str, Any] = dict(
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=self.engine_version),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[security_group],
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(
                DATABASE_USER, encryption_key=kms_key
            ),
            storage_encrypted=True,
            storage_encryption_key=kms_key,
            cluster_identifier=self.cluster_identifier,
            cloudwatch_logs_exports=["postgresql"],
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.cluster = rds.DatabaseCluster(
            self, "Cluster", **{**tunable, **(database_props or {}), **owned}
        )
        self.cluster.node.add_dependency(self.log_group)
        if self.cluster.secret is None:
            raise RuntimeError("the cluster was created without a generated secret")
        self.secret = self.cluster.secret
        acknowledge(self.cluster, [DATABASE_BACKUP, RDS_MONITORING_ROLE])
        generated_secret = _generated_secret(self.secret)
        acknowledge(generated_secret, DATABASE_SECRET_ROTATION)
        if kms_key is None:
            acknowledge(self.log_group, [LOG_GROUP_WITHOUT_CMK])
            acknowledge(generated_secret, [SECRET_WITHOUT_CMK])
        self.deletion_protection: cr.AwsCustomResource | None = None
        self.deletion_protection_enabled = False
        self.deletion_protection_log_group: logs.LogGroup | None = None

    def _auto_pause(self, spec: EnvironmentClassSpec, props: Mapping[str, Any]) -> Duration | None:
        """The idle time before Aurora pauses the database, or None (and a warning when only
        the engine version is in the way)."""
        if "serverless_v2_min_capacity" in props and props["serverless_v2_min_capacity"] != 0:
            return None  # a minimum given in database_props: the database never pauses
        given = props.get("serverless_v2_auto_pause_duration")
        version = self.engine_version.aurora_postgres_full_version
        if supports_auto_pause(version):
            return given if isinstance(given, Duration) else defaults.DATABASE_AUTO_PAUSE
        Annotations.of(self).add_warning_v2(
            AUTO_PAUSE_WARNING_ID,
            f"database_engine_version: Aurora PostgreSQL {version} cannot scale to 0 ACU "
            "(13.15, 14.12, 15.7, 16.3 and later can), so the database keeps its minimum "
            f"capacity of {spec.db_min_acu:g} ACU even while the environment is paused; "
            "choose a newer engine version to let it pause",
        )
        return None

    def protect_after(self, *dependencies: IDependable, enabled: bool = True) -> None:
        """Set the cluster's deletion protection to `enabled` after `dependencies`.

        A custom resource calls `rds:ModifyDBCluster` (DeletionProtection, ApplyImmediately)
        on create and whenever `enabled` changes. Made to depend on the rest of the
        environment, it runs last in the first create, so a failure anywhere before it rolls
        back a cluster that is not yet protected. It does nothing on delete: while
        protection is on, deleting the stack fails at the cluster; deploy with
        `enabled=False` first. Its only permission is ModifyDBCluster on this cluster. Its
        function runs outside the VPC: it calls only the RDS API, never the database.
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
        )
        self.deletion_protection.node.add_dependency(self.cluster, *dependencies)
        self.deletion_protection_enabled = enabled
        self.deletion_protection_log_group = log_group
        acknowledge(self.cluster, database_deletion_protection(enabled))
        acknowledge(self.deletion_protection, [DELETION_PROTECTION_POLICY])
        acknowledge(
            custom_resource_provider(self.deletion_protection),
            [*CUSTOM_RESOURCE_PROVIDER, DELETION_PROTECTION_OUTSIDE_VPC],
        )
        if self._kms_key is None:
            acknowledge(log_group, [LOG_GROUP_WITHOUT_CMK])


def _generated_secret(attached: secretsmanager.ISecret) -> secretsmanager.Secret:
    """The secret resource behind a cluster's `secret`, which is the secret's attachment to
    the cluster (its child): acknowledging the attachment would not cover the secret."""
    secret = attached.node.scope
    if not isinstance(secret, secretsmanager.Secret):
        raise LookupError(f"{attached.node.path} is not the attachment of a generated secret")
    return secret


def custom_resource_provider(resource: cr.AwsCustomResource) -> lambda_.Function:
    """The Lambda behind every `AwsCustomResource` of the stack, which CDK creates at stack
    level as a singleton, outside `resource`. Found through the role `resource` documents as
    its `grant_principal` (the function's own role) rather than by CDK's construct id; raises
    if CDK changes this, so the compliance tests notice instead of losing acknowledgements."""
    role = resource.grant_principal
    function = role.node.scope if isinstance(role, iam.Role) else None
    if not isinstance(function, lambda_.Function):
        raise LookupError(
            f"no provider function behind {resource.node.path}: CDK changed how "
            "AwsCustomResource builds it; find it anew to keep its acknowledgements"
        )
    return function
