from __future__ import annotations

from aws_cdk.assertions import Match


def test_shared_storage_is_encrypted_and_retained(default_template) -> None:
    default_template.has_resource(
        "AWS::EFS::FileSystem",
        {
            "Properties": Match.object_like({"Encrypted": True}),
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_shared_storage_uses_the_customer_key_when_given(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::EFS::FileSystem",
        {"Encrypted": True, "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}},
    )


def test_shared_storage_access_point_runs_as_the_airflow_user(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::EFS::AccessPoint",
        {
            "PosixUser": {"Uid": "50000", "Gid": "0"},
            "RootDirectory": {
                "Path": "/airflow",
                "CreationInfo": {"OwnerUid": "50000", "OwnerGid": "0", "Permissions": "755"},
            },
        },
    )


def test_broker_queue_has_mwaa_visibility_timeout_and_encryption(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 43200,
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 1209600,
        },
    )


def test_broker_queue_uses_the_customer_key_when_given(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::SQS::Queue",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}},
    )


def test_broker_queue_policy_denies_insecure_transport(default_template) -> None:
    default_template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_log_groups_are_named_as_mwaa(default_template) -> None:
    for suffix in ("DAGProcessing", "Scheduler", "Triggerer", "Task", "WebServer", "Worker"):
        default_template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"airflow-openmwaa-{suffix}", "RetentionInDays": 30},
        )


def test_log_groups_use_the_customer_key_when_given(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "airflow-shared-Task",
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
        },
    )


def test_customer_key_lets_cloudwatch_logs_use_it(kms_template) -> None:
    kms_template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowCloudWatchLogsForAirflowEnvironment",
                                "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_secrets_are_generated_never_given(default_template) -> None:
    secrets = default_template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 6
    for secret in secrets.values():
        assert "GenerateSecretString" in secret["Properties"]
        assert "SecretString" not in secret["Properties"]


def test_secrets_use_the_customer_key_when_given(kms_template) -> None:
    secrets = kms_template.find_resources("AWS::SecretsManager::Secret")
    assert secrets
    for secret in secrets.values():
        assert secret["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("Key")
