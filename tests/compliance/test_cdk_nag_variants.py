"""cdk-nag over the variants whose resources differ: micro, public HTTPS, own VPC, and each
sign-in option."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from openmwaa import AirflowEnvironment, EnvironmentClass, SignIn, WorkerPool
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV, public_https_stack, shared_vpc


def test_cdk_nag_public_https_variant_has_no_unacknowledged_finding() -> None:
    assert nag_findings(public_https_stack) == []


def test_cdk_nag_micro_variant_has_no_unacknowledged_finding() -> None:
    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Micro")
        AirflowEnvironment(stack, "Airflow", environment_class=EnvironmentClass.MW1_MICRO)

    assert nag_findings(build) == []


def test_cdk_nag_worker_pools_variant_has_no_unacknowledged_finding() -> None:
    """A pool adds a queue, a task definition, a service and an autoscaler (function, table):
    each must carry the acknowledgements of its counterpart, on Spot and on demand."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Pools")
        AirflowEnvironment(
            stack,
            "Airflow",
            worker_pools=[WorkerPool("long-running"), WorkerPool("spot", fargate_spot=True)],
        )

    assert nag_findings(build) == []


def test_cdk_nag_bring_your_own_variant_has_no_unacknowledged_finding() -> None:
    """Your bucket and cluster (nothing to acknowledge on them: not ours), our database
    with your backup and maintenance settings, and Spot workers on your cluster."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Own", env=TEST_ENV)
        vpc = shared_vpc(stack)
        AirflowEnvironment(
            stack,
            "Airflow",
            vpc=vpc,
            existing_bucket=s3.Bucket.from_bucket_name(stack, "Dags", "acme-airflow-dags"),
            existing_cluster=ecs.Cluster(
                stack, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
            ),
            database_props={
                "backup": rds.BackupProps(retention=cdk.Duration.days(35)),
                "preferred_maintenance_window": "Sun:03:00-Sun:04:00",
            },
            worker_fargate_spot=True,
        )

    assert nag_findings(build) == []


def test_cdk_nag_imported_cluster_variant_has_no_unacknowledged_finding() -> None:
    """An imported cluster: the acknowledgements name it by its literal name."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Imported", env=TEST_ENV)
        vpc = shared_vpc(stack)
        AirflowEnvironment(
            stack,
            "Airflow",
            vpc=vpc,
            existing_cluster=ecs.Cluster.from_cluster_attributes(
                stack, "Cluster", cluster_name="platform", vpc=vpc
            ),
        )

    assert nag_findings(build) == []


def test_cdk_nag_metrics_variant_has_no_unacknowledged_finding() -> None:
    """Airflow's metrics in a namespace of yours with the opt-in failure-rate alarm: the
    alarms on Container Insights, SQS, Aurora and metric math add no finding."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "Metrics", env=TEST_ENV)
        AirflowEnvironment(
            stack,
            "Airflow",
            metrics_namespace="Acme/Airflow",
            task_failure_rate_alarm=0.2,
            worker_pools=[WorkerPool("long-running")],
        )

    assert nag_findings(build) == []


SIGN_IN_VARIANTS = ("oidc", "cognito-certificate", "cognito-kms-no-mfa", "identity-center")


@pytest.mark.parametrize("variant", SIGN_IN_VARIANTS)
def test_cdk_nag_sign_in_variants_have_no_unacknowledged_finding(variant: str) -> None:
    """Each sign-in option's resources: the OIDC client secret given, the Cognito user pool
    (its app client's secret in a secret of ours, with and without a customer managed key),
    the Verified Permissions policy store and its grant."""

    def build(app: cdk.App) -> None:
        stack = cdk.Stack(app, "SignIn", env=TEST_ENV)
        props: dict[str, object] = {}
        if variant == "oidc":
            props["sign_in"] = SignIn.oidc(
                issuer="https://acme.okta.com/oauth2/default",
                client_id="0oa1b2c3d4",
                client_secret=secretsmanager.Secret.from_secret_name_v2(
                    stack, "IdpSecret", "okta-airflow-client"
                ),
                roles={"data-eng": "Op"},
                name="okta",
            )
        if variant.startswith(("cognito", "identity")):
            props["domain_name"] = "airflow.example.com"
            props["certificate"] = acm.Certificate.from_certificate_arn(
                stack,
                "Certificate",
                "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            )
            if variant == "cognito-kms-no-mfa":
                props["kms_key"] = kms.Key(stack, "Key", enable_key_rotation=True)
                props["sign_in"] = SignIn.cognito(mfa=False)
        if variant.startswith("identity"):
            props["sign_in"] = SignIn.iam_identity_center(
                saml_metadata_url="https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/MDEy",
                roles={"9067a2b1c4-0a1b2c3d-4e5f-6789-abcd-ef0123456789": "Op", "admins": "Admin"},
            )
        AirflowEnvironment(stack, "Airflow", **props)

    assert nag_findings(build) == []
