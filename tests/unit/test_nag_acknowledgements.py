"""Acknowledging cdk-nag findings: a missing construct raises, CDK's internals are found."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import custom_resources as cr

from openmwaa.dag_sync import bucket_notifications
from openmwaa.database import custom_resource_provider
from openmwaa.nag_acknowledgements import HIPAA, NIST, acknowledge
from openmwaa.nag_reasons import BUCKET_REPLICATION, INLINE_ROLE_POLICY


def _acknowledged(construct: cdk.Resource) -> dict[str, str]:
    return {
        rule: reason
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }


def test_acknowledging_no_construct_raises_instead_of_passing_silently() -> None:
    with pytest.raises(LookupError, match="S3BucketReplicationEnabled"):
        acknowledge(None, [BUCKET_REPLICATION])


def test_acknowledge_records_the_finding_in_each_of_its_packs() -> None:
    bucket = s3.Bucket(cdk.Stack(), "Bucket")
    acknowledge(bucket, [BUCKET_REPLICATION])
    assert _acknowledged(bucket) == {
        f"{HIPAA}S3BucketReplicationEnabled": BUCKET_REPLICATION.reason,
        f"{NIST}S3BucketReplicationEnabled": BUCKET_REPLICATION.reason,
    }


def _function(stack: cdk.Stack) -> lambda_.Function:
    return lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )


def test_bucket_notifications_are_found_through_their_custom_resource() -> None:
    stack = cdk.Stack()
    bucket = s3.Bucket(stack, "Bucket")
    bucket.add_event_notification(
        s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(_function(stack))
    )
    notifications, handler = bucket_notifications(bucket)
    assert notifications.node.scope is bucket
    assert handler.node.scope is stack
    # The handler is CDK's stack-level singleton: its role is what cdk-nag flags.
    assert any(isinstance(child, iam.Role) for child in handler.node.children)
    acknowledge(notifications, [INLINE_ROLE_POLICY])


def test_bucket_notifications_raise_when_the_bucket_has_none() -> None:
    with pytest.raises(LookupError, match="Custom::S3BucketNotifications"):
        bucket_notifications(s3.Bucket(cdk.Stack(), "Bucket"))


def test_custom_resource_provider_is_the_stack_level_function() -> None:
    stack = cdk.Stack()
    call = cr.AwsSdkCall(
        service="RDS",
        action="modifyDBCluster",
        parameters={"DBClusterIdentifier": "cluster"},
        physical_resource_id=cr.PhysicalResourceId.of("cluster"),
    )
    resource = cr.AwsCustomResource(
        stack,
        "Resource",
        on_create=call,
        policy=cr.AwsCustomResourcePolicy.from_statements(
            [iam.PolicyStatement(actions=["rds:ModifyDBCluster"], resources=["*"])]
        ),
        install_latest_aws_sdk=False,
    )
    function = custom_resource_provider(resource)
    assert function.node.scope is stack
