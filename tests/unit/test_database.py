from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from openmwaa import EnvironmentClass
from openmwaa.environment_class import spec_for
from tests.conftest import template_of


def test_database_is_aurora_postgresql_serverless_v2(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": Match.string_like_regexp(r"^16\."),
            "DatabaseName": "airflow",
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 2},
        },
    )
    default_template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"}
    )


def test_database_is_encrypted_protected_and_backed_up(default_template) -> None:
    default_template.has_resource(
        "AWS::RDS::DBCluster",
        {
            "Properties": Match.object_like(
                {
                    "StorageEncrypted": True,
                    "DeletionProtection": True,
                    "BackupRetentionPeriod": 7,
                    "EnableIAMDatabaseAuthentication": True,
                    "EnableCloudwatchLogsExports": ["postgresql"],
                }
            ),
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
        },
    )


def test_database_credentials_are_generated_into_secrets_manager(default_template) -> None:
    cluster = next(iter(default_template.find_resources("AWS::RDS::DBCluster").values()))
    password = cluster["Properties"]["MasterUserPassword"]["Fn::Join"][1]
    assert any("resolve:secretsmanager" in str(part) for part in password)


def test_database_uses_the_customer_key_when_given(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {"KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}},
    )


def test_database_log_group_exists_before_the_cluster(default_template) -> None:
    cluster = next(iter(default_template.find_resources("AWS::RDS::DBCluster").values()))
    groups = default_template.find_resources(
        "AWS::Logs::LogGroup",
        {"Properties": {"LogGroupName": "/aws/rds/cluster/openmwaa-metadata/postgresql"}},
    )
    [group_id] = groups
    assert group_id in cluster["DependsOn"]


@pytest.mark.parametrize(
    "environment_class", [EnvironmentClass.MW1_LARGE, EnvironmentClass.MW1_2XLARGE]
)
def test_database_capacity_follows_environment_class(environment_class: EnvironmentClass) -> None:
    spec = spec_for(environment_class)
    template_of(environment_class=environment_class).has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": spec.db_min_acu,
                "MaxCapacity": spec.db_max_acu,
            }
        },
    )
