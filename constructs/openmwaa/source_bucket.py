"""The versioned S3 bucket users put dags/, plugins.zip, requirements.txt and startup.sh in."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct

DAGS_PREFIX = "dags/"
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"
STARTUP_SCRIPT_KEY = "startup.sh"


def access_log_removal_policy(removal_policy: RemovalPolicy) -> RemovalPolicy:
    """DESTROY when the data is destroyed, else plain RETAIN (see `SourceBucket`)."""
    if removal_policy == RemovalPolicy.DESTROY:
        return RemovalPolicy.DESTROY
    return RemovalPolicy.RETAIN


class SourceBucket(Construct):
    """The environment's source bucket, laid out as MWAA's.

    Versioned (so `*_s3_object_version` props can pin requirements, plugins and the
    startup script), Block Public Access on all four settings, SSL-only, encrypted with
    `kms_key` when given (SSE-KMS with a bucket key) or S3-managed keys otherwise, server
    access logs to a second bucket. Noncurrent versions expire after
    `noncurrent_version_retention` (default 90 days) so history does not grow without bound.

    The source bucket follows `removal_policy` (default RETAIN_ON_UPDATE_OR_DELETE:
    CloudFormation `RetainExceptOnCreate`, kept on stack delete, deleted by the rollback of
    a failed first create). The access-log bucket is plain `Retain` unless `removal_policy`
    is DESTROY: S3 and the load balancer may already have delivered logs into it during a
    failed create (the load balancer writes a test object as soon as its logging is on),
    and rollback cannot delete a non-empty bucket, which would end the stack in
    ROLLBACK_FAILED. It has no fixed name, so keeping it never blocks a retry; delete the
    orphan by hand.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kms_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        noncurrent_version_retention: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=access_log_removal_policy(removal_policy),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.KMS if kms_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=kms_key,
            bucket_key_enabled=kms_key is not None,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="source-bucket/",
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=noncurrent_version_retention or Duration.days(90),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
