"""Lambda entry point ``pauser.handler.handler``: a thin boto3 adapter of :mod:`pauser.core`.

It reads the configuration from the environment (:meth:`pauser.core.Config.from_env`), the
stack's status (CloudFormation ``DescribeStacks``), each service's desired count (ECS
``DescribeServices``) and each autoscaler rule's state (EventBridge ``DescribeRule``), lets
the core decide, and carries the steps out: ``DisableRule``/``EnableRule``,
``RegisterScalableTarget`` with ``SuspendedState``, ``DisableAlarmActions``/
``EnableAlarmActions``, ``UpdateService``. One resource per call, so a refused call names
the resource. The answer is :meth:`pauser.core.Decision.result`, and its message is logged.

A malformed event raises :class:`pauser.core.EventError`; a failed AWS call raises
:class:`AwsCallError` naming the call and the resource. Running the same action again
repairs a run cut short: every step is idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from pauser import core

logger = logging.getLogger("pauser")
logger.setLevel(logging.INFO)

ECS_NAMESPACE = "ecs"
ECS_DIMENSION = "ecs:service:DesiredCount"

_CLIENTS: dict[str, Any] = {}


class AwsCallError(RuntimeError):
    """An AWS call failed, or answered something unusable."""

    def __init__(self, operation: str, resource: str, detail: str) -> None:
        super().__init__(f"{operation} {resource}: {detail}")
        self.operation = operation


def _client(name: str) -> Any:
    """A boto3 client, created on first use and reused across warm invocations."""
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        _CLIENTS[name] = boto3.client(
            name,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=20,
            ),
        )
    return _CLIENTS[name]


def _call(operation: str, resource: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return function(**kwargs)
    except Exception as error:  # botocore ClientError, BotoCoreError, timeouts
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            details = response.get("Error", {})
            code = details.get("Code", type(error).__name__)
            message = details.get("Message", str(error))
            raise AwsCallError(operation, resource, f"{code}: {message}") from error
        raise AwsCallError(operation, resource, f"{type(error).__name__}: {error}") from error


class AwsIO:
    """The AWS side: reads the facts and applies the steps, one resource per call."""

    def __init__(
        self,
        config: core.Config,
        *,
        cloudformation: Any,
        ecs: Any,
        events: Any,
        application_autoscaling: Any,
        cloudwatch: Any,
    ) -> None:
        self._config = config
        self._cloudformation = cloudformation
        self._ecs = ecs
        self._events = events
        self._scaling = application_autoscaling
        self._cloudwatch = cloudwatch

    def stack_status(self) -> str:
        name = self._config.stack_name
        answer = _call(
            "cloudformation:DescribeStacks",
            name,
            self._cloudformation.describe_stacks,
            StackName=name,
        )
        try:
            return str(answer["Stacks"][0]["StackStatus"])
        except (KeyError, IndexError, TypeError) as error:
            raise AwsCallError(
                "cloudformation:DescribeStacks", name, f"unusable answer: {error!r}"
            ) from None

    def observe(self) -> core.Observation:
        desired = {s.name: self.desired_count(s.name) for s in self._config.services}
        enabled = {rule: self.rule_enabled(rule) for rule in self._config.rules}
        return core.Observation(desired=desired, rules_enabled=enabled)

    def desired_count(self, service: str) -> int:
        operation = "ecs:DescribeServices"
        answer = _call(
            operation,
            service,
            self._ecs.describe_services,
            cluster=self._config.cluster_name,
            services=[service],
        )
        found = [
            s
            for s in answer.get("services", [])
            if s.get("serviceName") == service or str(s.get("serviceArn", "")) == service
        ]
        if not found:
            failures = answer.get("failures") or [{"reason": "not returned"}]
            raise AwsCallError(operation, service, str(failures[0].get("reason", "unknown")))
        if found[0].get("status", "ACTIVE") != "ACTIVE":
            raise AwsCallError(operation, service, f"the service is {found[0]['status']}")
        try:
            return int(found[0]["desiredCount"])
        except (KeyError, TypeError, ValueError) as error:
            raise AwsCallError(operation, service, f"unusable answer: {error!r}") from None

    def rule_enabled(self, rule: str) -> bool:
        answer = _call("events:DescribeRule", rule, self._events.describe_rule, Name=rule)
        state = str(answer.get("State", ""))
        if state not in ("ENABLED", "DISABLED"):
            # ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS is for event patterns: not ours.
            raise AwsCallError("events:DescribeRule", rule, f"unexpected state {state!r}")
        return state == "ENABLED"

    def apply(self, step: core.Step, sleep: Callable[[float], None]) -> None:
        config = self._config
        match step:
            case core.SetRule(rule, True):
                _call("events:EnableRule", rule, self._events.enable_rule, Name=rule)
            case core.SetRule(rule, False):
                _call("events:DisableRule", rule, self._events.disable_rule, Name=rule)
            case core.SetScaling(service, suspended):
                resource_id = f"service/{config.cluster_name}/{service.name}"
                _call(
                    "application-autoscaling:RegisterScalableTarget",
                    resource_id,
                    self._scaling.register_scalable_target,
                    ServiceNamespace=ECS_NAMESPACE,
                    ResourceId=resource_id,
                    ScalableDimension=ECS_DIMENSION,
                    SuspendedState={
                        "DynamicScalingInSuspended": suspended,
                        "DynamicScalingOutSuspended": suspended,
                        "ScheduledScalingSuspended": suspended,
                    },
                )
            case core.SetAlarmActions(alarm, True):
                _call(
                    "cloudwatch:EnableAlarmActions",
                    alarm,
                    self._cloudwatch.enable_alarm_actions,
                    AlarmNames=[alarm],
                )
            case core.SetAlarmActions(alarm, False):
                _call(
                    "cloudwatch:DisableAlarmActions",
                    alarm,
                    self._cloudwatch.disable_alarm_actions,
                    AlarmNames=[alarm],
                )
            case core.Settle(seconds):
                sleep(seconds)
            case core.SetDesiredCount(service, count):
                _call(
                    "ecs:UpdateService",
                    service.name,
                    self._ecs.update_service,
                    cluster=config.cluster_name,
                    service=service.name,
                    desiredCount=count,
                )
            case _:
                raise TypeError(f"not a step: {step!r}")


def run(
    event: Any,
    config: core.Config,
    io: AwsIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Decide and act on ``event``; returns the decision's result (and logs it)."""
    action = core.parse_action(event)
    decision = core.check_stack(action, config, io.stack_status())
    if decision is None:
        decision = core.decide(action, config, io.observe())
        for step in decision.steps:
            logger.info("%s: %s", action.value, core.describe(step))
            io.apply(step, sleep)
    result = decision.result()
    logger.info(json.dumps({k: v for k, v in result.items() if k != "steps"}))
    return result


def aws_io(config: core.Config) -> AwsIO:
    """The adapter on boto3 clients of the function's region."""
    return AwsIO(
        config,
        cloudformation=_client("cloudformation"),
        ecs=_client("ecs"),
        events=_client("events"),
        application_autoscaling=_client("application-autoscaling"),
        cloudwatch=_client("cloudwatch"),
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: ``{"action": "pause"}`` or ``{"action": "resume"}``."""
    config = core.Config.from_env(os.environ)
    try:
        return run(event, config, aws_io(config))
    except (core.EventError, AwsCallError) as error:
        logger.error("%s", error)
        raise
