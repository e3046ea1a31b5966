"""cdk-nag over the variants whose resources differ: micro, public HTTPS, own VPC."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV, public_https_stack, shared_vpc


def test_cdk_nag_public_https_variant_has_no_unacknowledged_finding() -> None:
    assert nag_findings(public_https_stack) == []


def test_cdk_nag_micro_variant_has_no_unacknowledged_finding() -> None:
    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Micro")
        AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_MICRO)

    assert nag_findings(build) == []


def test_cdk_nag_worker_pools_variant_has_no_unacknowledged_finding() -> None:
    """A pool adds a queue, a task definition, a service and an autoscaler (function, table):
    each must carry the acknowledgements of its counterpart, on Spot and on demand."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Pools")
        AirflowEnvironment(
            stack,
            "Airflow",
            worker_pools=[WorkerPool("long-running"), WorkerPool("spot", fargate_spot=True)],
        )

    assert nag_findings(build) == []


def test_cdk_nag_bring_your_own_variant_has_no_unacknowledged_finding() -> None:
    """Your bucket and cluster (nothing to acknowledge on them: not ours), our database
    with your backup and maintenance settings, and Spot workers on your cluster."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Own", env=TEST_ENV)
        vpc = shared_vpc(stack)
        AirflowEnvironment(
            stack,
            "Airflow",
            vpc=vpc,
            existing_bucket=s3.Bucket.from_bucket_name(stack, "Dags", "acme-airflow-dags"),
            existing_cluster=ecs.Cluster(
                stack, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
            ),
            database_props={
                "backup": rds.BackupProps(retention=cdk.Duration.days(35)),
                "preferred_maintenance_window": "Sun:03:00-Sun:04:00",
            },
            worker_fargate_spot=True,
        )

    assert nag_findings(build) == []


def test_cdk_nag_imported_cluster_variant_has_no_unacknowledged_finding() -> None:
    """An imported cluster: the acknowledgements name it by its literal name."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Imported", env=TEST_ENV)
        vpc = shared_vpc(stack)
        AirflowEnvironment(
            stack,
            "Airflow",
            vpc=vpc,
            existing_cluster=ecs.Cluster.from_cluster_attributes(
                stack, "Cluster", cluster_name="platform", vpc=vpc
            ),
        )

    assert nag_findings(build) == []
