"""The end-to-end IAM model (tests/e2e/iam.py) of the pauser's calls, against the statements
the construct writes: each allowed on this environment's resources and refused elsewhere."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.iam import authorization_context, evaluate

R, A = "us-east-1", "123456789012"


def _context(signing_name: str, operation: str, **params: Any) -> Any:
    return authorization_context(
        signing_name, operation, params, region=R, account=A, moto_resource="moto-resource"
    )


def _allowed(statement: dict[str, Any], context: Any) -> bool:
    policy = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}]
    return evaluate(policy, context.action, context.resource, context.condition_keys).allowed


RULES = {
    "Action": ["events:DescribeRule", "events:DisableRule", "events:EnableRule"],
    "Resource": [f"arn:aws:events:{R}:{A}:rule/dev-autoscaler"],
}
ALARMS = {
    "Action": ["cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions"],
    "Resource": [f"arn:aws:cloudwatch:{R}:{A}:alarm:dev-heartbeat"],
}
SCALING = {
    "Action": "application-autoscaling:RegisterScalableTarget",
    "Resource": f"arn:aws:application-autoscaling:{R}:{A}:scalable-target/*",
    "Condition": {
        "StringEquals": {
            "application-autoscaling:service-namespace": "ecs",
            "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
        }
    },
}
STACK = {
    "Action": "cloudformation:DescribeStacks",
    "Resource": f"arn:aws:cloudformation:{R}:{A}:stack/OpenMwaa/*",
}


@pytest.mark.parametrize("operation", ["DescribeRule", "DisableRule", "EnableRule"])
def test_rule_actions_are_authorized_on_the_rule(operation: str) -> None:
    own = _context("events", operation, Name="dev-autoscaler")
    other = _context("events", operation, Name="someone-elses-rule")
    on_a_bus = _context("events", operation, Name="dev-autoscaler", EventBusName="custom")

    assert own.resource == f"arn:aws:events:{R}:{A}:rule/dev-autoscaler" and own.modelled
    assert on_a_bus.resource == f"arn:aws:events:{R}:{A}:rule/custom/dev-autoscaler"
    assert _allowed(RULES, own)
    assert not _allowed(RULES, other) and not _allowed(RULES, on_a_bus)


@pytest.mark.parametrize("operation", ["DisableAlarmActions", "EnableAlarmActions"])
def test_alarm_actions_are_authorized_on_the_alarm(operation: str) -> None:
    own = _context("monitoring", operation, AlarmNames=["dev-heartbeat"])
    query = _context("monitoring", operation, **{"AlarmNames.member.1": "dev-heartbeat"})
    other = _context("monitoring", operation, AlarmNames=["prod-heartbeat"])

    assert own.action == f"cloudwatch:{operation}"
    assert own.resource == query.resource == f"arn:aws:cloudwatch:{R}:{A}:alarm:dev-heartbeat"
    assert _allowed(ALARMS, own) and not _allowed(ALARMS, other)


def test_several_alarms_in_one_call_are_not_modelled() -> None:
    assert not _context("monitoring", "DisableAlarmActions", AlarmNames=["a", "b"]).modelled


def test_register_scalable_target_carries_the_namespace_and_dimension() -> None:
    ecs = _context(
        "application-autoscaling",
        "RegisterScalableTarget",
        ServiceNamespace="ecs",
        ResourceId="service/c/s",
        ScalableDimension="ecs:service:DesiredCount",
    )
    dynamodb = _context(
        "application-autoscaling",
        "RegisterScalableTarget",
        ServiceNamespace="dynamodb",
        ResourceId="table/t",
        ScalableDimension="dynamodb:table:ReadCapacityUnits",
    )

    assert ecs.resource.startswith(f"arn:aws:application-autoscaling:{R}:{A}:scalable-target/")
    assert _allowed(SCALING, ecs) and not _allowed(SCALING, dynamodb)


def test_describe_stacks_is_authorized_on_the_stack_by_name() -> None:
    own = _context("cloudformation", "DescribeStacks", StackName="OpenMwaa")
    other = _context("cloudformation", "DescribeStacks", StackName="OpenMwaaProd")
    arn = f"arn:aws:cloudformation:{R}:{A}:stack/OpenMwaa/0f1e2d3c"

    assert own.resource == f"arn:aws:cloudformation:{R}:{A}:stack/OpenMwaa/*"
    assert _context("cloudformation", "DescribeStacks", StackName=arn).resource == arn
    assert _allowed(STACK, own) and not _allowed(STACK, other)
