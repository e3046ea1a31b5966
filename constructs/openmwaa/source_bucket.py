"""The versioned S3 bucket users put dags/, plugins.zip, requirements.txt and startup.sh in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from constructs import Construct

from . import defaults
from .nag_acknowledgements import acknowledge
from .nag_reasons import (
    ACCESS_LOG_BUCKET,
    ACCESS_LOG_BUCKET_LOGGING,
    BUCKET_REPLICATION,
    BUCKET_WITHOUT_CMK,
)

OWNED_BUCKET_PROPS: dict[str, str] = {
    "versioned": "always on: the object-version pins need it",
    "block_public_access": "always BLOCK_ALL",
    "enforce_ssl": "always on",
    "encryption": "use kms_key",
    "encryption_key": "use kms_key",
    "bucket_key_enabled": "follows kms_key",
    "object_ownership": "always BUCKET_OWNER_ENFORCED (no ACLs)",
    "server_access_logs_bucket": "always the environment's access-log bucket",
    "server_access_logs_prefix": "always source-bucket/",
    "removal_policy": "use removal_policy",
}
"""`s3.Bucket` settings of the source bucket that `bucket_props` cannot override, and why."""


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

    With `existing_bucket`, that bucket is used as it is and only the access-log bucket is
    created. `bucket_props` overrides the new bucket's other settings (`s3.Bucket` keyword
    arguments); validation refuses the `OWNED_BUCKET_PROPS`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kms_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = defaults.REMOVAL_POLICY,
        noncurrent_version_retention: Duration | None = None,
        existing_bucket: s3.IBucket | None = None,
        bucket_props: Mapping[str, Any] | None = None,
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
                    expiration=defaults.ACCESS_LOG_EXPIRY,
                    noncurrent_version_expiration=defaults.ACCESS_LOG_NONCURRENT_EXPIRY,
                )
            ],
        )
        acknowledge(self.access_log_bucket, [*ACCESS_LOG_BUCKET, BUCKET_REPLICATION])
        self.created = existing_bucket is None
        """False when the bucket is yours (`existing_bucket`)."""
        if existing_bucket is not None:
            if isinstance(existing_bucket, s3.Bucket) and Stack.of(existing_bucket) is not Stack.of(
                self
            ):
                raise ValueError(
                    f"existing_bucket: got {existing_bucket.node.path}, a bucket of another "
                    "stack; its S3 notifications and our function would reference each other "
                    "across stacks (a cycle). Allowed: a bucket of this stack, or one imported "
                    "here (s3.Bucket.from_bucket_attributes)"
                )
            self.bucket: s3.IBucket = existing_bucket
            acknowledge(self.access_log_bucket, [ACCESS_LOG_BUCKET_LOGGING])
            return
        overrides = dict(bucket_props or {})
        expiry = s3.LifecycleRule(
            id="ExpireNoncurrentVersions",
            noncurrent_version_expiration=noncurrent_version_retention
            or defaults.SOURCE_NONCURRENT_VERSION_RETENTION,
            abort_incomplete_multipart_upload_after=defaults.INCOMPLETE_UPLOAD_EXPIRY,
        )
        settings: dict[str, Any] = {
            **overrides,
            # Your rules come after ours: history never grows without bound.
            "lifecycle_rules": [expiry, *overrides.get("lifecycle_rules", ())],
            **self._owned_settings(kms_key, removal_policy),
        }
        bucket = s3.Bucket(self, "Bucket", **settings)
        self.bucket = bucket
        if kms_key is None:
            acknowledge(bucket, [BUCKET_WITHOUT_CMK])
        acknowledge(bucket, [BUCKET_REPLICATION])

    def _owned_settings(
        self, kms_key: kms.IKey | None, removal_policy: RemovalPolicy
    ) -> dict[str, Any]:
        """The settings `bucket_props` may not override (`OWNED_BUCKET_PROPS`)."""
        return dict(
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
        )
