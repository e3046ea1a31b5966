"""What a customer managed key's policy must allow for the environment's log groups and alarms."""

from __future__ import annotations

from aws_cdk import Annotations, ArnFormat, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from constructs import Construct


def allow_cloudwatch_logs(key: kms.IKey) -> bool:
    """Add CloudWatch Logs' statement to the key policy; False if CDK cannot (imported key)."""
    stack = Stack.of(key)
    result = key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsForAirflowEnvironment",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    return result.statement_added


IMPORTED_KEY_WARNING_ID = "openmwaa:importedKmsKeyPolicy"


def warn_imported_key(scope: Construct, key: kms.IKey, *, alarm_topic_created: bool) -> None:
    """Warn at synth that an imported key's policy, which CDK cannot change, must allow what
    the environment's log groups (and the alarm topic we create) need."""
    stack = Stack.of(scope)
    region = "<region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<account>" if Token.is_unresolved(stack.account) else stack.account
    partition = "aws" if Token.is_unresolved(stack.partition) else stack.partition
    needed = [
        f"principal logs.{region}.amazonaws.com: kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, "
        "kms:GenerateDataKey*, kms:Describe* on resource *, with condition ArnLike "
        f"kms:EncryptionContext:aws:logs:arn = arn:{partition}:logs:{region}:{account}"
        ":log-group:* (every log group of the environment is encrypted with it)"
    ]
    if alarm_topic_created:
        needed.append(
            "principal cloudwatch.amazonaws.com: kms:Decrypt, kms:GenerateDataKey* on resource "
            f"*, with condition StringEquals aws:SourceAccount = {account} (alarms publish "
            "to the encrypted alarm topic)"
        )
    Annotations.of(scope).add_warning_v2(
        IMPORTED_KEY_WARNING_ID,
        "kms_key is imported, so CDK cannot add to its key policy. Without these statements "
        "in the key policy, log groups fail to create and alarms cannot notify: "
        + "; ".join(f"({i}) {text}" for i, text in enumerate(needed, 1)),
    )
