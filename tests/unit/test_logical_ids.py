"""Logical ids of stateful and named resources are a contract: a changed id replaces them.

A resource whose logical id changes is created anew and the old one deleted (or kept, for
Retain policies). For a retained resource that means a new, empty copy beside the old data;
for a resource with a fixed physical name, a create that fails because the name is taken.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_create_rollback import PHYSICAL_NAME_PROPERTY

KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}

PINNED = {
    # retained data
    "AirflowSourceBucket5B9B957C": "AWS::S3::Bucket",
    "AirflowSecretsMachineKeyF9627DE5": "AWS::SecretsManager::Secret",
    "AirflowSourceAccessLogs8722C247": "AWS::S3::Bucket",
    "AirflowSharedStorageFileSystem0D2B48DB": "AWS::EFS::FileSystem",
    "AirflowSecretsFernetSeed1B4CC83B": "AWS::SecretsManager::Secret",
    "AirflowSecretsJwtSecret3AF0CFD5": "AWS::SecretsManager::Secret",
    "AirflowSecretsApiSecretKeyAC1F5C24": "AWS::SecretsManager::Secret",
    "AirflowSecretsAdminAACA2D94": "AWS::SecretsManager::Secret",
    "AirflowNetworkFlowLogs25723A8E": "AWS::Logs::LogGroup",
    # retained and named
    "AirflowLogsDagProcessingE350B265": "AWS::Logs::LogGroup",
    "AirflowLogsScheduler457A8734": "AWS::Logs::LogGroup",
    "AirflowLogsTriggererFF510872": "AWS::Logs::LogGroup",
    "AirflowLogsTaskDABDE5BB": "AWS::Logs::LogGroup",
    "AirflowLogsWebServer7DBDC66E": "AWS::Logs::LogGroup",
    "AirflowLogsWorker4CFA2C29": "AWS::Logs::LogGroup",
    "AirflowMetadataDatabasePostgresqlLogsC49F4FAF": "AWS::Logs::LogGroup",
    # snapshot on delete, named
    "AirflowMetadataDatabaseCluster306CBF69": "AWS::RDS::DBCluster",
    # named
    "AirflowServicesNamespace456A7D6D": "AWS::ServiceDiscovery::PrivateDnsNamespace",
    "AirflowMonitoringDashboardAE57D3F9": "AWS::CloudWatch::Dashboard",
    # in-flight task messages
    "AirflowBrokerQueueC9B28B0F": "AWS::SQS::Queue",
}


def named_or_kept(resources: dict[str, Any]) -> dict[str, str]:
    """Resources with a fixed physical name or a policy that keeps them on delete."""
    found = {}
    for logical_id, resource in resources.items():
        name_property = PHYSICAL_NAME_PROPERTY.get(resource["Type"])
        named = name_property is not None and name_property in resource.get("Properties", {})
        if named or resource.get("DeletionPolicy") in KEEPING_POLICIES:
            found[logical_id] = resource["Type"]
    return found


@pytest.mark.parametrize(("logical_id", "resource_type"), sorted(PINNED.items()))
def test_stateful_resource_logical_id_is_stable(
    default_template, logical_id: str, resource_type: str
) -> None:
    assert logical_id in default_template.find_resources(resource_type)


def test_every_named_or_kept_resource_is_pinned(default_template) -> None:
    resources = default_template.to_json()["Resources"]
    unpinned = {k: v for k, v in named_or_kept(resources).items() if k not in PINNED}
    assert unpinned == {}


def test_named_or_kept_finds_a_retained_and_a_named_resource() -> None:
    """The check above is able to fail."""
    resources = {
        "Kept": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "RetainExceptOnCreate"},
        "Named": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "x"}},
        "Neither": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
        "InlinePolicy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyName": "p"}},
    }
    assert named_or_kept(resources) == {
        "Kept": "AWS::S3::Bucket",
        "Named": "AWS::Logs::LogGroup",
    }
