"""cfn-lint reports no error on the templates of many prop combinations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from cfnlint.api import ManualArgs, lint

from openmwaa import (
    AirflowEnvironment,
    EnvironmentClass,
    LoggingConfiguration,
    LogLevel,
    ModuleLogging,
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
        AirflowEnvironment(stack, "Airflow", **props)
        return stack

    return build


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
