"""The pauser as the environment builds it: its function's settings, its scoped permissions,
the schedules, the parameter the CLI reads, the grant, and the props' validation."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match, Template

from openmwaa import EnvironmentClass, WorkerPool
from openmwaa.cli import pause_resume as cli
from openmwaa.pause_resume import (
    ENVIRONMENT_SIZE_WARNING_ID,
    LAMBDA_ENVIRONMENT_LIMIT,
    PARAMETER_NAME_FORMAT,
    in_flight_window,
)
from openmwaa.validation import check_pause_schedules, cron_problems
from tests.conftest import template_of
from tests.stacks import environment_stack

HANDLER = "pauser.handler.handler"
WEEKDAY_EVENINGS = "cron(0 19 ? * MON-FRI *)"
WEEKDAY_MORNINGS = "cron(0 7 ? * MON-FRI *)"


def _render(value: Any) -> str:
    """A Fn::Join of literals, Refs (``<Id>``) and GetAtts (``<Id.Attr>``) as one string."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"cannot render {value}")


def _pauser(template: Template) -> dict[str, Any]:
    [function] = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return function


def _variables(template: Template) -> dict[str, Any]:
    variables = _pauser(template)["Environment"]["Variables"]
    return {
        name: json.loads(_render(value)) if name in ("SERVICES", "RULES", "ALARMS") else value
        for name, value in variables.items()
    }


def _statements(template: Template) -> dict[str, dict[str, Any]]:
    role = _pauser(template)["Role"]["Fn::GetAtt"][0]
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    return {s["Sid"]: s for s in policy}


def _logical_ids(template: Template, kind: str) -> set[str]:
    return set(template.find_resources(kind))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the function ------------------------------------------------------------------------


def test_every_environment_has_a_pauser(default_template: Template) -> None:
    function = _pauser(default_template)
    assert function["Runtime"].startswith("python3")
    assert function["Timeout"] == 130 + 180


def test_pauser_knows_every_service_with_its_resume_count(default_template: Template) -> None:
    services = _variables(default_template)["SERVICES"]

    by_label = {label: (name, count, scaled) for name, label, count, scaled in services}
    assert {label: count for label, (_, count, _) in by_label.items()} == {
        "scheduler": 2,
        "dag-processor": 1,
        "triggerer": 1,
        "api-server": 2,
        "execution-api": 2,
        "worker": 1,
    }
    names = {name for name, _, _ in by_label.values()}
    services_in_template = _logical_ids(default_template, "AWS::ECS::Service")
    assert names == {f"<{logical_id}.Name>" for logical_id in services_in_template}
    assert all(scaled == 0 for _, _, scaled in by_label.values())  # 2 to 2: no scaling


def test_pauser_knows_every_alarm_and_the_autoscaler_rule(default_template: Template) -> None:
    variables = _variables(default_template)

    alarms = _logical_ids(default_template, "AWS::CloudWatch::Alarm")
    assert sorted(variables["ALARMS"]) == sorted(f"<{a}>" for a in alarms)
    [rule] = variables["RULES"]
    assert rule.startswith("<AirflowWorkerAutoscalerSchedule")
    assert variables["STACK_NAME"] == "OpenMwaa"
    assert variables["DATABASE_AUTO_PAUSE_SECONDS"] == "300"


def test_pause_waits_for_the_autoscalers_in_flight_window(default_template: Template) -> None:
    [autoscaler] = [
        (logical_id, f["Properties"])
        for logical_id, f in default_template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "autoscaler.handler.handler"
    ]
    [invoke_config] = [
        c["Properties"]
        for c in default_template.find_resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": autoscaler[0]}
    ]
    expected = autoscaler[1]["Timeout"] + invoke_config["MaximumEventAgeInSeconds"] + 10

    assert _variables(default_template)["SETTLE_SECONDS"] == str(expected)


def test_in_flight_window_is_capped_without_a_maximum_event_age() -> None:
    stack = cdk.Stack()
    from aws_cdk import aws_lambda as lambda_

    function = lambda_.Function(
        stack,
        "F",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="a.b",
        code=lambda_.Code.from_inline("x"),
        timeout=cdk.Duration.seconds(60),
    )
    assert in_flight_window(function).to_seconds() == 600
    function.configure_async_invoke(max_event_age=cdk.Duration.seconds(60))
    assert in_flight_window(function).to_seconds() == 130


def test_scaled_services_are_flagged_and_scaling_can_be_suspended() -> None:
    template = template_of(max_webservers=4)

    scaled = {label for _, label, _, flag in _variables(template)["SERVICES"] if flag}
    assert scaled == {"api-server", "execution-api"}
    statement = _statements(template)["SuspendServiceScaling"]
    assert statement["Action"] == "application-autoscaling:RegisterScalableTarget"
    assert _render(statement["Resource"]).endswith(":scalable-target/*")
    assert statement["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "ecs",
            "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
        }
    }


def test_mw1_micro_pauses_its_single_service_without_waiting() -> None:
    template = template_of(environment_class=EnvironmentClass.MW1_MICRO)
    variables = _variables(template)

    [(_, label, count, scaled)] = variables["SERVICES"]
    assert (label, count, scaled) == ("all-in-one", 1, 0)
    assert variables["RULES"] == [] and variables["SETTLE_SECONDS"] == "0"
    assert "AutoscalerRules" not in _statements(template)
    assert _pauser(template)["Timeout"] == 180


def test_worker_pools_are_paused_and_resumed_to_their_minimum() -> None:
    template = template_of(worker_pools=[WorkerPool("long", min_workers=2, max_workers=4)])
    variables = _variables(template)

    assert [(label, count) for _, label, count, _ in variables["SERVICES"]][-1] == (
        "worker:long",
        2,
    )
    assert len(variables["RULES"]) == 2


# --- its permissions ---------------------------------------------------------------------


def test_pauser_permissions_name_only_this_environments_resources(
    default_template: Template,
) -> None:
    statements = _statements(default_template)

    assert set(statements) == {
        "EnvironmentServices",
        "AutoscalerRules",
        "EnvironmentAlarmActions",
        "StackStatus",
    }
    services = statements["EnvironmentServices"]
    assert services["Action"] == ["ecs:DescribeServices", "ecs:UpdateService"]
    assert sorted(r["Ref"] for r in services["Resource"]) == sorted(
        _logical_ids(default_template, "AWS::ECS::Service")
    )
    rules = statements["AutoscalerRules"]
    assert rules["Action"] == ["events:DescribeRule", "events:DisableRule", "events:EnableRule"]
    [rule] = _as_list(rules["Resource"])
    assert rule["Fn::GetAtt"][1] == "Arn"
    assert rule["Fn::GetAtt"][0] in _logical_ids(default_template, "AWS::Events::Rule")
    assert rule["Fn::GetAtt"][0].startswith("AirflowWorkerAutoscalerSchedule")
    alarms = statements["EnvironmentAlarmActions"]
    assert alarms["Action"] == ["cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions"]
    assert sorted(r["Fn::GetAtt"][0] for r in alarms["Resource"]) == sorted(
        _logical_ids(default_template, "AWS::CloudWatch::Alarm")
    )
    stack = statements["StackStatus"]
    assert stack["Action"] == "cloudformation:DescribeStacks"
    assert _render(stack["Resource"]).endswith(":stack/OpenMwaa/*")
    every = [r for s in statements.values() for r in _as_list(s["Resource"])]
    assert "*" not in every


# --- the schedules -----------------------------------------------------------------------


def test_no_schedule_without_the_props(default_template: Template) -> None:
    default_template.resource_count_is("AWS::Scheduler::Schedule", 0)


def test_schedules_invoke_the_pauser_in_their_time_zone() -> None:
    template = template_of(
        pause_schedule=WEEKDAY_EVENINGS,
        resume_schedule=WEEKDAY_MORNINGS,
        schedule_time_zone="Europe/Paris",
    )

    schedules = {
        json.loads(s["Properties"]["Target"]["Input"])["action"]: s["Properties"]
        for s in template.find_resources("AWS::Scheduler::Schedule").values()
    }
    assert set(schedules) == {"pause", "resume"}
    assert schedules["pause"]["ScheduleExpression"] == WEEKDAY_EVENINGS
    assert schedules["resume"]["ScheduleExpression"] == WEEKDAY_MORNINGS
    for schedule in schedules.values():
        assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert schedule["Target"]["Arn"]["Fn::GetAtt"][0].startswith("AirflowPauserFunction")
        assert schedule["Target"]["RoleArn"]["Fn::GetAtt"][0].startswith("AirflowPauserSchedule")


def test_schedule_role_may_only_invoke_the_pauser() -> None:
    template = template_of(pause_schedule=WEEKDAY_EVENINGS, resume_schedule=WEEKDAY_MORNINGS)

    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
                        }
                    )
                ]
            }
        },
    )
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"][0]["Ref"].startswith("AirflowPauserScheduleRole")
    ]
    [statement] = policy
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("AirflowPauserFunction")


# --- the CLI's parameter and the grant ---------------------------------------------------


def test_parameter_tells_the_cli_which_function(default_template: Template) -> None:
    [parameter] = default_template.find_resources(
        "AWS::SSM::Parameter", {"Properties": {"Name": "/openmwaa/openmwaa/pauser"}}
    ).values()
    value = json.loads(
        _render(parameter["Properties"]["Value"]).replace("<AWS::Region>", "eu-west-1")
    )
    assert value["function"].startswith("<AirflowPauserFunction")
    assert value["timeout"] == 310
    assert PARAMETER_NAME_FORMAT == cli.PARAMETER_NAME_FORMAT


def test_grant_pause_resume_allows_invoking_the_pauser_and_reading_its_parameter() -> None:
    stack, env = environment_stack()
    role = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    env.grant_pause_resume(role)

    template = Template.from_stack(stack)
    [statements] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": stack.get_logical_id(role.node.default_child)}]
    ]
    actions = {s["Action"]: s["Resource"] for s in statements}
    assert actions["lambda:InvokeFunction"]["Fn::GetAtt"][0].startswith("AirflowPauserFunction")
    assert "<AirflowPauserParameter" in _render(actions["ssm:GetParameter"])
    assert env.pauser.function is not None


def test_warns_when_the_names_may_not_fit_in_the_functions_environment() -> None:
    stack, env = environment_stack()
    assert env.pauser.estimated_environment_size < LAMBDA_ENVIRONMENT_LIMIT / 2
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp("pauser"))

    stack, env = environment_stack(worker_pools=[WorkerPool(f"pool-{i}") for i in range(10)])
    assert env.pauser.estimated_environment_size > LAMBDA_ENVIRONMENT_LIMIT
    Annotations.from_stack(stack).has_warning(
        "*", Match.string_like_regexp(f".*Lambda's {LAMBDA_ENVIRONMENT_LIMIT}.*")
    )
    assert ENVIRONMENT_SIZE_WARNING_ID.startswith("openmwaa:")


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        WEEKDAY_EVENINGS,
        "cron(30 7 ? * MON-FRI *)",
        "cron(0 20 * * ? *)",
        "cron(0/15 8-18 ? * 2-6 *)",
        "cron(0 9 L * ? 2030)",
        "cron(0 9 ? * 6#3 *)",
    ],
)
def test_cron_expressions_scheduler_accepts_pass(expression: str) -> None:
    assert cron_problems("pause_schedule", expression) == []


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 19 * * MON-FRI", "allowed: cron(minutes hours"),
        ("rate(1 day)", "allowed: cron(minutes hours"),
        ("cron(0 19 * * MON-FRI)", "allowed: cron(minutes hours"),
        ("cron(0 19 * * MON-FRI *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 19 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 19h ? * MON *)", "hours field '19h'"),
    ],
)
def test_fails_when_a_schedule_is_not_a_cron_expression(expression: str, problem: str) -> None:
    problems = cron_problems("pause_schedule", expression)
    assert problems and all(p.startswith("pause_schedule: ") for p in problems)
    assert any(problem in p for p in problems)


def test_fails_when_only_one_schedule_is_given() -> None:
    with pytest.raises(ValueError, match="pause_schedule: given without resume_schedule"):
        environment_stack(pause_schedule=WEEKDAY_EVENINGS)
    with pytest.raises(ValueError, match="resume_schedule: given without pause_schedule"):
        environment_stack(resume_schedule=WEEKDAY_MORNINGS)


def test_fails_when_both_schedules_are_the_same() -> None:
    with pytest.raises(ValueError, match=r"resume_schedule: .* the same as pause_schedule"):
        environment_stack(pause_schedule=WEEKDAY_EVENINGS, resume_schedule=WEEKDAY_EVENINGS)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "UTC+2", "", "Europe/Pari"])
def test_fails_when_the_time_zone_is_not_an_iana_name(zone: str) -> None:
    with pytest.raises(ValueError, match="schedule_time_zone: got"):
        environment_stack(
            pause_schedule=WEEKDAY_EVENINGS,
            resume_schedule=WEEKDAY_MORNINGS,
            schedule_time_zone=zone,
        )


def test_schedule_rules_are_skipped_for_tokens() -> None:
    from openmwaa.environment_props import AirflowEnvironmentProps, resolve

    token = cdk.Token.as_string(cdk.Fn.ref("PauseSchedule"))
    props = resolve(
        AirflowEnvironmentProps(pause_schedule=token, resume_schedule=WEEKDAY_MORNINGS),
        construct_id="Airflow",
    )
    assert check_pause_schedules(props) == []


def test_readme_states_the_schedule_defaults() -> None:
    from openmwaa import defaults
    from tests.unit.test_props import _defaults_table

    table = _defaults_table()
    assert table["schedule_time_zone"][0] == f"`{defaults.SCHEDULE_TIME_ZONE}`"
    assert table["pause_schedule"][0].startswith("none") and "pause_schedule" in table
    assert table["resume_schedule"] == table["pause_schedule"]
