"""The pauser's variants under cdk-nag (every finding acknowledged with its reason) and
cfn-lint: schedules, scaled web servers, an engine that cannot pause, mw1.micro."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from cfnlint.api import ManualArgs, lint

from openmwaa import AirflowEnvironment, EnvironmentClass
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV
from tools.cdk_app import project_app

SCHEDULES = {
    "pause_schedule": "cron(0 19 ? * MON-FRI *)",
    "resume_schedule": "cron(0 7 ? * MON-FRI *)",
    "schedule_time_zone": "Europe/Paris",
}
VARIANTS = {
    "schedules-scaled-web": {**SCHEDULES, "max_webservers": 4},
    "schedules-micro-old-engine": {
        **SCHEDULES,
        "environment_class": EnvironmentClass.MW1_MICRO,
        "database_engine_version": rds.AuroraPostgresEngineVersion.VER_15_4,
    },
}


def _build(props: dict[str, object], env: cdk.Environment | None = None):  # type: ignore[no-untyped-def]
    def build(app: cdk.App) -> cdk.Stack:
        stack = cdk.Stack(app, "Paused", env=env)
        AirflowEnvironment(stack, "Airflow", **props)  # type: ignore[arg-type]
        return stack

    return build


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cdk_nag_finds_nothing_unacknowledged_in_the_pauser_variants(name: str) -> None:
    assert nag_findings(_build(VARIANTS[name])) == []


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_finds_no_error_in_the_pauser_variants(name: str) -> None:
    app = project_app()
    stack = _build(VARIANTS[name], TEST_ENV)(app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} {m.path}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
