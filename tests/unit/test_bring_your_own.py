"""Your own bucket or cluster, or overrides of the bucket's and the database's settings."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
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


def test_bucket_props_lifecycle_rules_are_added_after_ours() -> None:
    stack = _stack()
    archive = s3.LifecycleRule(
        id="ArchiveOldDags",
        transitions=[
            s3.Transition(
                storage_class=s3.StorageClass.GLACIER, transition_after=cdk.Duration.days(90)
            )
        ],
    )
    AirflowEnvironment(stack, "Airflow", bucket_props={"lifecycle_rules": [archive]})
    buckets = assertions.Template.from_stack(stack).find_resources("AWS::S3::Bucket")
    [source] = [b for name, b in buckets.items() if "SourceBucket" in name]
    rules = source["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [rule["Id"] for rule in rules] == ["ExpireNoncurrentVersions", "ArchiveOldDags"]


def test_fails_when_existing_bucket_belongs_to_another_stack() -> None:
    app = project_app()
    data = cdk.Stack(app, "Data", env=TEST_ENV)
    bucket = s3.Bucket(data, "Dags")
    stack = cdk.Stack(app, "Airflow", env=TEST_ENV)
    with pytest.raises(ValueError, match="existing_bucket: got Data/Dags, a bucket of another"):
        AirflowEnvironment(stack, "Airflow", existing_bucket=bucket)


def test_fails_when_bucket_props_is_not_a_dict() -> None:
    stack = _stack()
    with pytest.raises(ValueError, match="bucket_props: got BucketProps; allowed: a dict"):
        AirflowEnvironment(stack, "Airflow", bucket_props=s3.BucketProps(bucket_name="acme-x"))  # type: ignore[arg-type]


def test_imported_cluster_with_spot_warns_at_synth() -> None:
    stack = _stack()
    vpc = shared_vpc(stack)
    cluster = ecs.Cluster.from_cluster_attributes(stack, "Platform", cluster_name="p", vpc=vpc)
    AirflowEnvironment(
        stack, "Airflow", vpc=vpc, existing_cluster=cluster, worker_fargate_spot=True
    )
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("FARGATE_SPOT capacity providers")
    )
    assert len(warnings) == 1
