"""cdk-nag 3 (AwsSolutions, HIPAA Security, NIST 800-53 rev 5) reports no unacknowledged finding."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from openmwaa.nag_reasons import AWS_MANAGED_ENCRYPTION
from tests.compliance.nag import nag_findings
from tests.stacks import bundled_stack, kms_imported_vpc_stack
from tools.cdk_app import project_app


def test_cdk_nag_bundled_app_has_no_unacknowledged_finding() -> None:
    assert nag_findings(bundled_stack) == []


def test_cdk_nag_kms_and_imported_vpc_variant_has_no_unacknowledged_finding() -> None:
    assert nag_findings(kms_imported_vpc_stack) == []


def test_cdk_nag_reports_a_noncompliant_bucket() -> None:
    """The harness is able to fail: an unversioned bucket without SSL policy is reported."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Bad")
        s3.Bucket(stack, "Plain")

    findings = nag_findings(build)
    assert any(f.startswith("AwsSolutions-S10 Bad/Plain") for f in findings)
    assert any(f.startswith("NIST.800.53.R5-S3BucketVersioningEnabled Bad/Plain") for f in findings)


def _acknowledgements(env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every acknowledgement recorded under `env`: '<path> <rule>' -> reason."""
    return {
        f"{construct.node.path} {rule}": reason
        for construct in env.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }


def test_cdk_nag_customer_key_variant_acknowledges_no_aws_managed_encryption() -> None:
    _, env = kms_imported_vpc_stack()
    reasons = _acknowledgements(env)
    assert reasons
    assert AWS_MANAGED_ENCRYPTION not in reasons.values()


def test_cdk_nag_default_variant_acknowledges_aws_managed_encryption_per_resource() -> None:
    app = project_app()
    env = bundled_stack(app).airflow  # type: ignore[attr-defined]
    reasons = _acknowledgements(env)
    bucket_path = env.bucket.node.path
    assert reasons[f"{bucket_path} NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS"] == (
        AWS_MANAGED_ENCRYPTION
    )


def test_cdk_nag_every_acknowledgement_has_a_specific_reason() -> None:
    app = project_app()
    env = bundled_stack(app).airflow  # type: ignore[attr-defined]
    for key, reason in _acknowledgements(env).items():
        assert len(reason) >= 60, key
