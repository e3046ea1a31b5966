"""A failed first create rolls back cleanly, and the retry can succeed.

A static model of what CloudFormation does when a stack's first create fails:

- rollback deletes every resource it created, except those whose DeletionPolicy is
  `Retain` (`RetainExceptOnCreate`, `Snapshot` and `Delete` resources are deleted);
- deleting a resource that has deletion protection on since its create fails, and the
  stack ends in ROLLBACK_FAILED (it can then only be deleted, leaving the resource behind);
- a resource kept by the rollback still holds its physical name, so if that name is fixed
  in the template (a log group name, a cluster identifier, ...) the retry fails with
  "already exists".

The model runs over the synthesized templates of the bundled app and of variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import RemovalPolicy

from openmwaa import EnvironmentClass
from tests.conftest import template_of

KEPT_BY_CREATE_ROLLBACK = {"Retain"}
"""DeletionPolicy values whose resource survives the rollback of the create that made it."""

PHYSICAL_NAME_PROPERTY: Mapping[str, str | None] = {
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::EFS::FileSystem": None,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::KMS::Key": None,
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBClusterParameterGroup": "DBClusterParameterGroupName",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
}
"""The property that sets a resource type's own physical name (None: it has none)."""


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def deletion_protected_at_create(resource: Mapping[str, Any]) -> bool:
    """Whether the resource is created with deletion protection on."""
    properties = resource.get("Properties", {})
    kind = resource["Type"]
    if kind in ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance"):
        return _is_true(properties.get("DeletionProtection"))
    if kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
        return any(
            a.get("Key") == "deletion_protection.enabled" and _is_true(a.get("Value"))
            for a in properties.get("LoadBalancerAttributes", [])
        )
    if kind == "AWS::DynamoDB::Table":
        return _is_true(properties.get("DeletionProtectionEnabled"))
    if kind == "AWS::EC2::Instance":
        return _is_true(properties.get("DisableApiTermination"))
    return False


def create_rollback_problems(template: Mapping[str, Any]) -> list[str]:
    """What would go wrong if the first create of `template` failed, then was retried."""
    problems = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        kind = resource["Type"]
        kept = resource.get("DeletionPolicy", "Delete") in KEPT_BY_CREATE_ROLLBACK
        if not kept:
            if deletion_protected_at_create(resource):
                problems.append(
                    f"ROLLBACK_FAILED: {logical_id} ({kind}) has deletion protection at create"
                )
            continue
        if kind not in PHYSICAL_NAME_PROPERTY:
            problems.append(f"unknown: {logical_id} ({kind}) is kept; add its name property")
            continue
        name_property = PHYSICAL_NAME_PROPERTY[kind]
        if name_property is not None and name_property in resource.get("Properties", {}):
            problems.append(
                f"retry fails: {logical_id} ({kind}) is kept by the rollback and its "
                f"{name_property} is fixed"
            )
    return problems


def test_create_rollback_bundled_app_rolls_back_and_retries(default_template) -> None:
    assert create_rollback_problems(default_template.to_json()) == []


def test_create_rollback_kms_and_imported_vpc_variant_rolls_back_and_retries(
    kms_template,
) -> None:
    assert create_rollback_problems(kms_template.to_json()) == []


@pytest.mark.parametrize(
    "props",
    [
        {"removal_policy": RemovalPolicy.DESTROY},
        {"environment_class": EnvironmentClass.MW1_MICRO},
        {"worker_fargate_spot": True, "deletion_protection": False},
    ],
    ids=["destroy", "micro", "spot-unprotected"],
)
def test_create_rollback_variant_rolls_back_and_retries(props: dict[str, Any]) -> None:
    assert create_rollback_problems(template_of(**props).to_json()) == []


def test_create_rollback_explicit_retain_blocks_the_retry_as_documented() -> None:
    """RETAIN (not the default) keeps the named log groups even after a failed create."""
    problems = create_rollback_problems(template_of(removal_policy=RemovalPolicy.RETAIN).to_json())
    assert problems
    assert all("LogGroupName is fixed" in p for p in problems)


def test_create_rollback_default_keeps_data_on_stack_delete(default_template) -> None:
    """RetainExceptOnCreate still keeps the data when a created stack is deleted."""
    kinds = ("AWS::S3::Bucket", "AWS::EFS::FileSystem", "AWS::SecretsManager::Secret")
    checked = set()
    for kind in kinds:
        for logical_id, resource in default_template.find_resources(kind).items():
            if logical_id.startswith("OpenMwaaAirflowMetadataDatabaseClusterSecret"):
                continue
            assert resource["DeletionPolicy"] in ("RetainExceptOnCreate", "Retain"), logical_id
            assert resource["UpdateReplacePolicy"] == "Retain", logical_id
            checked.add(kind)
    assert checked == set(kinds)


def test_create_rollback_model_catches_a_retained_log_group_with_a_fixed_name() -> None:
    group = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "airflow-x-Task"}}
    assert create_rollback_problems({"Resources": {"Task": {**group, "DeletionPolicy": "Retain"}}})
    assert not create_rollback_problems(
        {"Resources": {"Task": {**group, "DeletionPolicy": "RetainExceptOnCreate"}}}
    )


def test_create_rollback_model_catches_deletion_protection_at_create() -> None:
    cluster = {
        "Type": "AWS::RDS::DBCluster",
        "DeletionPolicy": "Snapshot",
        "Properties": {"DBClusterIdentifier": "x-metadata", "DeletionProtection": True},
    }
    [problem] = create_rollback_problems({"Resources": {"Cluster": cluster}})
    assert problem.startswith("ROLLBACK_FAILED: Cluster")
    balancer = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {
            "LoadBalancerAttributes": [{"Key": "deletion_protection.enabled", "Value": "true"}]
        },
    }
    assert create_rollback_problems({"Resources": {"Lb": balancer}})


def test_create_rollback_model_catches_the_old_template() -> None:
    """The template before this fix: Retain on the named log groups, a protected cluster."""
    old = {
        "Resources": {
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": "/aws/rds/cluster/openmwaa-metadata/postgresql"},
            },
            "Cluster": {
                "Type": "AWS::RDS::DBCluster",
                "DeletionPolicy": "Snapshot",
                "Properties": {
                    "DBClusterIdentifier": "openmwaa-metadata",
                    "DeletionProtection": True,
                },
            },
            "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {}},
        }
    }
    problems = create_rollback_problems(old)
    assert len(problems) == 2
    assert any(p.startswith("retry fails: Logs") for p in problems)
    assert any(p.startswith("ROLLBACK_FAILED: Cluster") for p in problems)


def test_create_rollback_model_refuses_an_unknown_kept_type() -> None:
    kept = {"Type": "AWS::Example::Thing", "DeletionPolicy": "Retain", "Properties": {}}
    assert create_rollback_problems({"Resources": {"Thing": kept}})
