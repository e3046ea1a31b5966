"""cdk-nag and cfn-lint over the cost levers' non-default settings: x86 tasks, Container
Insights on, a shorter flow-log retention, Spot workers with an on-demand base beside a Spot
pool, and mw1.micro with Container Insights (its alarm's other source).

Flow logs themselves have no switch: AwsSolutions-VPC7 and the HIPAA/NIST VPCFlowLogsEnabled
rules flag a VPC without them, and turning them off has no reason a construct could give."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from cfnlint.api import ManualArgs, lint

from openmwaa import AirflowEnvironment, EnvironmentClass, WorkerPool
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV
from tools.cdk_app import project_app


def _levers(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, "Levers", env=TEST_ENV)
    AirflowEnvironment(
        stack,
        "Airflow",
        cpu_architecture="X86_64",
        container_insights=True,
        flow_log_retention=logs.RetentionDays.ONE_MONTH,
        worker_fargate_spot=True,
        worker_on_demand_base=1,
        worker_pools=[WorkerPool("spot", fargate_spot=True)],
    )
    return stack


def _micro_insights(app: cdk.App) -> cdk.Stack:
    stack = cdk.Stack(app, "MicroInsights", env=TEST_ENV)
    AirflowEnvironment(
        stack, "Airflow", environment_class=EnvironmentClass.MW1_MICRO, container_insights=True
    )
    return stack


VARIANTS: dict[str, Callable[[cdk.App], cdk.Stack]] = {
    "levers": _levers,
    "micro-insights": _micro_insights,
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cdk_nag_cost_lever_variant_has_no_unacknowledged_finding(name: str) -> None:
    assert nag_findings(VARIANTS[name]) == []


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_finds_no_error_in_cost_lever_variant(name: str) -> None:
    app = project_app()
    stack = VARIANTS[name](app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} {m.path}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_container_insights_off_is_acknowledged_only_when_off() -> None:
    """ECS4 is acknowledged on our cluster with the reason, and not when Insights is on (so a
    regression that turns it off without the prop would show)."""

    def rules(container_insights: bool) -> set[str]:
        app = project_app()
        stack = cdk.Stack(app, "Insights", env=TEST_ENV)
        env = AirflowEnvironment(stack, "Airflow", container_insights=container_insights)
        found = set()
        for construct in env.services.cluster.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    found.update(entry.data)
        return found

    assert "AwsSolutions::AwsSolutions-ECS4" in rules(False)
    assert "AwsSolutions::AwsSolutions-ECS4" not in rules(True)
