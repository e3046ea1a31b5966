"""Logical ids of stateful resources are a contract: a changed id replaces data."""

from __future__ import annotations

import pytest

STATEFUL = {
    "AirflowSourceBucket5B9B957C": "AWS::S3::Bucket",
    "AirflowSourceAccessLogs8722C247": "AWS::S3::Bucket",
    "AirflowSharedStorageFileSystem0D2B48DB": "AWS::EFS::FileSystem",
    "AirflowMetadataDatabaseCluster306CBF69": "AWS::RDS::DBCluster",
    "AirflowSecretsFernetSeed1B4CC83B": "AWS::SecretsManager::Secret",
    "AirflowSecretsAdminAACA2D94": "AWS::SecretsManager::Secret",
    "AirflowLogsTaskDABDE5BB": "AWS::Logs::LogGroup",
    "AirflowBrokerQueueC9B28B0F": "AWS::SQS::Queue",
}


@pytest.mark.parametrize(("logical_id", "resource_type"), sorted(STATEFUL.items()))
def test_stateful_resource_logical_id_is_stable(
    default_template, logical_id: str, resource_type: str
) -> None:
    assert logical_id in default_template.find_resources(resource_type)
