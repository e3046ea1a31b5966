"""Your own bucket or cluster, or overrides of the bucket's and the database's settings."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3

from openmwaa import AirflowEnvironment
from tests.stacks import TEST_ENV, shared_vpc
from tools.cdk_app import project_app


def _stack() -> cdk.Stack:
    return cdk.Stack(project_app(), "Own", env=TEST_ENV)


def test_existing_bucket_is_used_and_no_source_bucket_is_created() -> None:
    stack = _stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Dags", "acme-airflow-dags")
    env = AirflowEnvironment(stack, "Airflow", existing_bucket=bucket)
    template = assertions.Template.from_stack(stack)
    [only] = template.find_resources("AWS::S3::Bucket")  # the access-log bucket
    assert "AccessLogs" in only
    assert env.bucket is bucket
    notifications = template.find_resources("Custom::S3BucketNotifications")
    [config] = [n["Properties"] for n in notifications.values()]
    assert config["BucketName"] == "acme-airflow-dags"
    assert config["Managed"] is False  # the bucket's other notifications are kept
    policies = template.find_resources("AWS::IAM::Policy")
    read = [
        statement
        for name, policy in policies.items()
        if name.startswith("AirflowExecutionRole")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject*" in statement["Action"]
    ]
    assert read and "acme-airflow-dags" in str(read)


def test_bucket_props_override_the_bucket_but_not_its_safety() -> None:
    stack = _stack()
    AirflowEnvironment(
        stack,
        "Airflow",
        bucket_props={"bucket_name": "acme-airflow-dags", "transfer_acceleration": True},
    )
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "acme-airflow-dags",
            "AccelerateConfiguration": {"AccelerationStatus": "Enabled"},
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": [assertions.Match.object_like({"Id": "ExpireNoncurrentVersions"})]
            },
        },
    )


def test_database_props_tune_the_cluster() -> None:
    stack = _stack()
    AirflowEnvironment(
        stack,
        "Airflow",
        database_props={
            "backup": rds.BackupProps(retention=cdk.Duration.days(35)),
            "preferred_maintenance_window": "Sun:03:00-Sun:04:00",
            "serverless_v2_max_capacity": 16,
        },
    )
    assertions.Template.from_stack(stack).has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "BackupRetentionPeriod": 35,
            "PreferredMaintenanceWindow": "Sun:03:00-Sun:04:00",
            "ServerlessV2ScalingConfiguration": assertions.Match.object_like({"MaxCapacity": 16}),
            "StorageEncrypted": True,
            "DatabaseName": "airflow",
        },
    )


def test_existing_cluster_runs_the_services_and_gets_spot_capacity() -> None:
    stack = _stack()
    vpc = shared_vpc(stack)
    cluster = ecs.Cluster(stack, "Platform", vpc=vpc)
    env = AirflowEnvironment(
        stack, "Airflow", vpc=vpc, existing_cluster=cluster, worker_fargate_spot=True
    )
    template = assertions.Template.from_stack(stack)
    [cluster_id] = template.find_resources("AWS::ECS::Cluster")
    assert cluster_id.startswith("Platform")
    services = template.find_resources("AWS::ECS::Service")
    assert services
    assert {str(s["Properties"]["Cluster"]) for s in services.values()} == {
        str({"Ref": cluster_id})
    }
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"Cluster": {"Ref": cluster_id}, "CapacityProviders": ["FARGATE", "FARGATE_SPOT"]},
    )
    assert env.services.cluster is cluster
