"""cfn-lint reports no error on the templates of many prop combinations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from cfnlint.api import ManualArgs, lint

from openmwaa import (
    AirflowEnvironment,
    EnvironmentClass,
    LoggingConfiguration,
    LogLevel,
    ModuleLogging,
    SignIn,
    WorkerPool,
)
from tests.stacks import TEST_ENV, bundled_stack
from tools.cdk_app import project_app


def _env(**props: Any) -> Callable[[cdk.App], cdk.Stack]:
    def build(app: cdk.App) -> cdk.Stack:
        stack = cdk.Stack(app, "Lint", env=TEST_ENV)
        if props.pop("with_key", False):
            props["kms_key"] = kms.Key(stack, "Key", enable_key_rotation=True)
        if props.pop("with_vpc", False):
            props["vpc"] = ec2.Vpc(stack, "OwnVpc", max_azs=2)
        if props.pop("with_certificate", False):
            props["domain_name"] = "airflow.example.com"
            props["certificate"] = acm.Certificate.from_certificate_arn(
                stack, "Certificate", CERTIFICATE_ARN
            )
        if props.pop("with_oidc", False):
            props["sign_in"] = SignIn.oidc(
                issuer="https://acme.okta.com/oauth2/default",
                client_id="0oa1b2c3d4",
                client_secret=secretsmanager.Secret.from_secret_name_v2(
                    stack, "IdpSecret", "okta-airflow-client"
                ),
                roles={"data-eng": "Op", "analysts": "Viewer"},
                name="okta",
            )
        AirflowEnvironment(stack, "Airflow", **props)
        return stack

    return build


CERTIFICATE_ARN = (
    "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
)

COMBINATIONS: dict[str, Callable[[cdk.App], cdk.Stack]] = {
    "bundled-app": bundled_stack,
    "micro": _env(environment_class=EnvironmentClass.MW1_MICRO),
    "medium-two-nat": _env(environment_class="mw1.medium", nat_gateways=2),
    "large-scale-to-zero": _env(environment_class="mw1.large", min_workers=0, max_workers=50),
    "xlarge-five-schedulers": _env(environment_class="mw1.xlarge", schedulers=5),
    "2xlarge-kms": _env(environment_class="mw1.2xlarge", with_key=True),
    "own-vpc": _env(with_vpc=True),
    "own-vpc-kms": _env(with_vpc=True, with_key=True),
    "pinned-versions": _env(
        requirements_s3_object_version="3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        plugins_s3_object_version="null",
        startup_script_s3_object_version="Wq2bN4rAc3pLx",
    ),
    "config-and-logging": _env(
        airflow_configuration_options={"core.parallelism": "64", "celery.worker_autoscale": "5,5"},
        logging_configuration=LoggingConfiguration(
            task=ModuleLogging(level=LogLevel.DEBUG),
            webserver=ModuleLogging(enabled=False),
            retention=logs.RetentionDays.THREE_MONTHS,
        ),
        tags={"team": "data-platform", "cost-center": "42"},
    ),
    "airflow-2": _env(airflow_version="2.11.2"),
    "bucket-and-database-props": _env(
        bucket_props={"bucket_name": "acme-airflow-dags", "transfer_acceleration": True},
        database_props={"preferred_maintenance_window": "Sun:03:00-Sun:04:00"},
    ),
    "metrics-namespace-failure-rate-pools": _env(
        metrics_namespace="Acme/Airflow",
        task_failure_rate_alarm=0.2,
        metrics_allow_list=["SchedulerHeartbeat", "TaskInstanceFailures", "TaskInstanceSuccesses"],
        worker_pools=[WorkerPool("long-running")],
    ),
    "metrics-off-micro": _env(environment_class=EnvironmentClass.MW1_MICRO, metrics_allow_list=[]),
    "sign-in-oidc": _env(with_oidc=True),
    "sign-in-cognito-certificate": _env(with_certificate=True),
    "sign-in-cognito-airflow-2-kms": _env(
        with_certificate=True, with_key=True, airflow_version="2.11.2"
    ),
    "sign-in-identity-center": _env(
        with_certificate=True,
        sign_in=SignIn.iam_identity_center(
            saml_metadata_url="https://portal.sso.eu-west-1.amazonaws.com/saml/metadata/MDEy",
            roles={"9067a2b1c4-0a1b2c3d-4e5f-6789-abcd-ef0123456789": "Op", "admins": "Admin"},
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_cfn_lint_finds_no_error(name: str) -> None:
    app = project_app()
    stack = COMBINATIONS[name](app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} {m.path}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_cfn_lint_reports_an_error_in_a_broken_template() -> None:
    broken = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "x"}}}
    }
    matches = lint(json.dumps(broken), config=ManualArgs(regions=["eu-west-1"]))
    assert any(m.rule.id.startswith("E") for m in matches)
