"""The EFS file system the Airflow containers read dags/ and plugins/ from."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_kms as kms

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import EFS_BACKUP

AIRFLOW_UID = 50000
"""The user the stock apache/airflow image runs as."""
AIRFLOW_GID = 0
SYNC_ROOT_PATH = "/airflow"


class SharedStorage(Construct):
    """EFS holding what the DAG sync writes and every Airflow container reads.

    Encrypted at rest (with `kms_key` when given) and in transit (the mounts use TLS and
    IAM authorization), mount targets in the environment's private subnets behind its
    security group, automatic backups on, removed as `removal_policy` says (default
    RETAIN_ON_UPDATE_OR_DELETE: kept on stack delete, deleted by the rollback of a failed
    first create). One access point,
    `access_point`, roots every client at `/airflow` as uid 50000 / gid 0 (the stock
    image's user), so the sync Lambda and the containers agree on ownership.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        kms_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.file_system = efs.FileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_group=security_group,
            encrypted=True,
            kms_key=kms_key,
            enable_automatic_backups=True,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC,
            lifecycle_policy=efs.LifecyclePolicy.AFTER_30_DAYS,
            removal_policy=removal_policy,
        )
        acknowledge(self.file_system, [EFS_BACKUP])
        self.access_point = self.file_system.add_access_point(
            "AccessPoint",
            path=SYNC_ROOT_PATH,
            create_acl=efs.Acl(
                owner_uid=str(AIRFLOW_UID), owner_gid=str(AIRFLOW_GID), permissions="755"
            ),
            posix_user=efs.PosixUser(uid=str(AIRFLOW_UID), gid=str(AIRFLOW_GID)),
        )
