from __future__ import annotations

import json
import re

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Match

from openmwaa import EnvironmentClass
from openmwaa.database import newest_engine_version
from openmwaa.environment_class import spec_for
from openmwaa.naming import database_cluster_identifier, namespace_name
from tests.conftest import template_of


def test_database_is_aurora_postgresql_serverless_v2(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": Match.string_like_regexp(r"^16\."),
            "DatabaseName": "airflow",
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": 0,
                "MaxCapacity": 2,
                "SecondsUntilAutoPause": 300,
            },
        },
    )
    default_template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"}
    )


def test_database_is_encrypted_and_backed_up(default_template) -> None:
    default_template.has_resource(
        "AWS::RDS::DBCluster",
        {
            "Properties": Match.object_like(
                {
                    "StorageEncrypted": True,
                    "BackupRetentionPeriod": 7,
                    "EnableIAMDatabaseAuthentication": True,
                    "EnableCloudwatchLogsExports": ["postgresql"],
                }
            ),
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
        },
    )


def test_database_cluster_is_created_without_deletion_protection(default_template) -> None:
    """Protected at create, the cluster would make a failed first create ROLLBACK_FAILED."""
    [cluster] = default_template.find_resources("AWS::RDS::DBCluster").values()
    assert "DeletionProtection" not in cluster["Properties"]


def _protection(template):  # type: ignore[no-untyped-def]
    [(logical_id, resource)] = template.find_resources(
        "Custom::DBClusterDeletionProtection"
    ).items()
    return logical_id, resource


def test_database_deletion_protection_is_turned_on_by_a_custom_resource(
    default_template,
) -> None:
    _, resource = _protection(default_template)
    cluster_id = _cluster_id(default_template)
    for phase in ("Create", "Update"):
        call = json.loads(
            "".join(
                "CLUSTER" if isinstance(part, dict) else part
                for part in resource["Properties"][phase]["Fn::Join"][1]
            )
        )
        assert call["action"] == "modifyDBCluster"
        assert call["parameters"] == {
            "DBClusterIdentifier": "CLUSTER",
            "DeletionProtection": True,
            "ApplyImmediately": True,
        }
    refs = [p for p in resource["Properties"]["Create"]["Fn::Join"][1] if isinstance(p, dict)]
    assert refs == [{"Ref": cluster_id}]
    assert "Delete" not in resource["Properties"]


def test_database_deletion_protection_runs_after_every_service(default_template) -> None:
    _, resource = _protection(default_template)
    services = default_template.find_resources("AWS::ECS::Service")
    assert len(services) == 6
    assert set(services) <= set(resource["DependsOn"])
    assert _cluster_id(default_template) in resource["DependsOn"]


def test_database_deletion_protection_may_only_modify_this_cluster(default_template) -> None:
    logical_id, _ = _protection(default_template)
    policies = default_template.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"PolicyName": Match.string_like_regexp("DeletionProtection")}},
    )
    [policy] = policies.values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "rds:ModifyDBCluster"
    parts = statement["Resource"]["Fn::Join"][1]
    assert parts[-2:] == [":cluster:", {"Ref": _cluster_id(default_template)}]
    assert logical_id.startswith("AirflowMetadataDatabaseDeletionProtection")


def test_database_deletion_protection_false_keeps_it_off() -> None:
    _, resource = _protection(template_of(deletion_protection=False))
    create = "".join(
        p for p in resource["Properties"]["Create"]["Fn::Join"][1] if isinstance(p, str)
    )
    assert '"DeletionProtection":false' in create


def test_fails_when_deletion_protection_is_not_a_bool() -> None:
    with pytest.raises(ValueError, match="deletion_protection"):
        template_of(deletion_protection="yes")


@pytest.mark.parametrize("policy", [RemovalPolicy.SNAPSHOT, "RETAIN"])
def test_fails_when_removal_policy_is_not_allowed(policy: object) -> None:
    with pytest.raises(ValueError, match="removal_policy"):
        template_of(removal_policy=policy)


def test_database_engine_is_the_newest_postgresql_16_in_aws_cdk_lib(default_template) -> None:
    minors = [
        int(name.removeprefix("VER_16_"))
        for name in dir(rds.AuroraPostgresEngineVersion)
        if re.fullmatch(r"VER_16_\d+", name)
    ]
    newest = getattr(rds.AuroraPostgresEngineVersion, f"VER_16_{max(minors)}")
    assert newest_engine_version().aurora_postgres_full_version == (
        newest.aurora_postgres_full_version
    )
    default_template.has_resource_properties(
        "AWS::RDS::DBCluster", {"EngineVersion": newest.aurora_postgres_full_version}
    )


def test_database_engine_version_can_be_pinned() -> None:
    template_of(
        database_engine_version=rds.AuroraPostgresEngineVersion.VER_16_4
    ).has_resource_properties("AWS::RDS::DBCluster", {"EngineVersion": "16.4"})


def test_database_and_log_groups_follow_destroy() -> None:
    template = template_of(removal_policy=RemovalPolicy.DESTROY)
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert groups
    for logical_id, group in groups.items():
        assert group["DeletionPolicy"] == "Delete", logical_id
    [cluster] = template.find_resources("AWS::RDS::DBCluster").values()
    assert cluster["DeletionPolicy"] == "Snapshot"


def test_database_cluster_identifier_is_valid_for_an_awkward_name() -> None:
    name = "My__Airflow_" + "x" * 60
    identifier = database_cluster_identifier(name)
    template = template_of(environment_name=name)
    template.has_resource_properties("AWS::RDS::DBCluster", {"DBClusterIdentifier": identifier})
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": f"/aws/rds/cluster/{identifier}/postgresql"},
    )
    template.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": namespace_name(name)}
    )
    assert len(identifier) <= 63 and "--" not in identifier


def _cluster_id(template) -> str:  # type: ignore[no-untyped-def]
    [cluster_id] = template.find_resources("AWS::RDS::DBCluster")
    return str(cluster_id)


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
                "MinCapacity": 0,  # it pauses when idle: see test_pause_resume_database.py
                "MaxCapacity": spec.db_max_acu,
                "SecondsUntilAutoPause": 300,
            }
        },
    )
