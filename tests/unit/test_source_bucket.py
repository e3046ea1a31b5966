from __future__ import annotations

from aws_cdk import RemovalPolicy

from tests.conftest import template_of

BPA_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}


def _source_bucket(template) -> dict:
    buckets = template.find_resources("AWS::S3::Bucket")
    [bucket] = [v for k, v in buckets.items() if "SourceBucket" in k]
    return bucket


def test_source_bucket_is_versioned(default_template) -> None:
    props = _source_bucket(default_template)["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_source_bucket_blocks_public_access_on_all_four_settings(default_template) -> None:
    assert (
        _source_bucket(default_template)["Properties"]["PublicAccessBlockConfiguration"] == BPA_ALL
    )


def test_source_bucket_policy_denies_insecure_transport(default_template) -> None:
    policies = default_template.find_resources("AWS::S3::BucketPolicy")
    [policy] = [v for k, v in policies.items() if "SourceBucketPolicy" in k]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [bucket_id] = [
        k for k in default_template.find_resources("AWS::S3::Bucket") if "SourceBucket" in k
    ]
    bucket_arn = {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [bucket_arn, {"Fn::Join": ["", [bucket_arn, "/*"]]}],
    } in statements


def test_source_bucket_uses_s3_managed_encryption_without_key(default_template) -> None:
    encryption = _source_bucket(default_template)["Properties"]["BucketEncryption"]
    rule = encryption["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_source_bucket_uses_the_customer_key_when_given(kms_template) -> None:
    encryption = _source_bucket(kms_template)["Properties"]["BucketEncryption"]
    rule = encryption["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith(
        "Key"
    )
    assert rule["BucketKeyEnabled"] is True


def test_source_bucket_logs_access_to_the_log_bucket(default_template) -> None:
    props = _source_bucket(default_template)["Properties"]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "source-bucket/"
    assert "AccessLogs" in props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]


def test_source_bucket_is_retained_on_stack_delete(default_template) -> None:
    """Kept on delete and replacement; only a failed first create's rollback deletes it."""
    bucket = _source_bucket(default_template)
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_source_access_log_bucket_is_kept_even_by_a_create_rollback(default_template) -> None:
    """It may hold logs already (rollback cannot delete a non-empty bucket); no fixed name."""
    [log_bucket] = [
        resource
        for logical_id, resource in default_template.find_resources("AWS::S3::Bucket").items()
        if logical_id.startswith("AirflowSourceAccessLogs")
    ]
    assert log_bucket["DeletionPolicy"] == "Retain"
    assert "BucketName" not in log_bucket["Properties"]


def test_source_buckets_follow_destroy() -> None:
    template = template_of(removal_policy=RemovalPolicy.DESTROY)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # the source bucket and its access log bucket
    for logical_id, bucket in buckets.items():
        assert bucket["DeletionPolicy"] == "Delete", logical_id
