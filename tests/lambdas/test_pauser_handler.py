"""The pauser's AWS adapter against moto: ECS, EventBridge, Application Auto Scaling,
CloudWatch and CloudFormation, as the construct wires them; faults and repeated runs.

The decisions alone are tested in test_pauser_core.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID

from pauser import core, handler
from pauser.core import Config, EventError, Service
from pauser.handler import AwsCallError, AwsIO

REGION = "us-east-1"
CLUSTER = "dev-cluster"
STACK = "DevStack"
SERVICES = (
    Service("dev-scheduler", "scheduler", 2),
    Service("dev-api", "api-server", 2, scaled=True),
    Service("dev-worker", "worker", 1),
)
RULES = ("dev-autoscaler", "dev-pool-autoscaler")
ALARMS = ("dev-heartbeat", "dev-api-unhealthy")
SUSPENDED = {
    "DynamicScalingInSuspended": True,
    "DynamicScalingOutSuspended": True,
    "ScheduledScalingSuspended": True,
}


@dataclass
class Aws:
    ecs: Any
    events: Any
    scaling: Any
    cloudwatch: Any
    cloudformation: Any
    config: Config

    def io(self, **faulty: Any) -> AwsIO:
        return AwsIO(
            self.config,
            cloudformation=faulty.get("cloudformation", self.cloudformation),
            ecs=faulty.get("ecs", self.ecs),
            events=faulty.get("events", self.events),
            application_autoscaling=faulty.get("scaling", self.scaling),
            cloudwatch=faulty.get("cloudwatch", self.cloudwatch),
        )

    def desired(self) -> dict[str, int]:
        answer = self.ecs.describe_services(cluster=CLUSTER, services=[s.name for s in SERVICES])
        return {s["serviceName"]: s["desiredCount"] for s in answer["services"]}

    def rules(self) -> dict[str, str]:
        return {rule: self.events.describe_rule(Name=rule)["State"] for rule in RULES}

    def alarm_actions(self) -> dict[str, bool]:
        alarms = self.cloudwatch.describe_alarms(AlarmNames=list(ALARMS))["MetricAlarms"]
        return {a["AlarmName"]: a["ActionsEnabled"] for a in alarms}

    def suspended(self) -> dict[str, Any]:
        targets = self.scaling.describe_scalable_targets(ServiceNamespace="ecs")
        return {t["ResourceId"]: t.get("SuspendedState") for t in targets["ScalableTargets"]}

    def set_stack_status(self, status: str) -> None:
        for stack in cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].stacks.values():
            stack.status = status


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name=REGION)
            for name in ("ecs", "events", "application-autoscaling", "cloudwatch", "cloudformation")
        }
        ecs = clients["ecs"]
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(
            family="airflow",
            containerDefinitions=[{"name": "airflow", "image": "airflow", "memory": 512}],
        )
        for service in SERVICES:
            ecs.create_service(
                cluster=CLUSTER,
                serviceName=service.name,
                taskDefinition="airflow",
                desiredCount=service.resume_count,
            )
        clients["application-autoscaling"].register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{CLUSTER}/dev-api",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=2,
            MaxCapacity=4,
        )
        for rule in RULES:
            clients["events"].put_rule(
                Name=rule, ScheduleExpression="rate(1 minute)", State="ENABLED"
            )
        for alarm in ALARMS:
            clients["cloudwatch"].put_metric_alarm(
                AlarmName=alarm,
                Namespace="AmazonMWAA",
                MetricName="SchedulerHeartbeat",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=5,
                Threshold=1,
                ComparisonOperator="LessThanThreshold",
                TreatMissingData="breaching",
                AlarmActions=[f"arn:aws:sns:{REGION}:{DEFAULT_ACCOUNT_ID}:alarms"],
            )
        clients["cloudformation"].create_stack(
            StackName=STACK,
            TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}),
        )
        config = Config(
            environment_name="dev",
            stack_name=STACK,
            cluster_name=CLUSTER,
            services=SERVICES,
            rules=RULES,
            alarms=ALARMS,
            settle_seconds=130,
            database_auto_pause_seconds=300,
        )
        yield Aws(
            clients["ecs"],
            clients["events"],
            clients["application-autoscaling"],
            clients["cloudwatch"],
            clients["cloudformation"],
            config,
        )


class Sleeps:
    """A sleep that records, and runs ``during`` (what happens meanwhile) instead of waiting."""

    def __init__(self, during: Any = None) -> None:
        self.calls: list[float] = []
        self.during = during

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.during is not None:
            self.during()


def _pause(aws: Aws, sleep: Sleeps | None = None, **faulty: Any) -> dict[str, Any]:
    return handler.run({"action": "pause"}, aws.config, aws.io(**faulty), sleep=sleep or Sleeps())


def _resume(aws: Aws, **faulty: Any) -> dict[str, Any]:
    return handler.run({"action": "resume"}, aws.config, aws.io(**faulty), sleep=Sleeps())


# --- pause and resume --------------------------------------------------------------------


def test_pause_stops_every_service_and_turns_the_autoscaler_and_alarms_off(aws: Aws) -> None:
    sleep = Sleeps()

    result = _pause(aws, sleep)

    assert result["changed"] and result["state"] == "running"
    assert aws.desired() == {"dev-scheduler": 0, "dev-api": 0, "dev-worker": 0}
    assert aws.rules() == dict.fromkeys(RULES, "DISABLED")
    assert aws.alarm_actions() == dict.fromkeys(ALARMS, False)
    assert aws.suspended() == {f"service/{CLUSTER}/dev-api": SUSPENDED}
    assert sleep.calls == [130]
    assert "environment dev paused" in result["message"]


def test_pause_sets_the_counts_after_an_autoscaler_run_under_way_could_act(aws: Aws) -> None:
    def late_autoscaler() -> None:
        # An invocation that started before its rule was disabled scales the workers out.
        aws.ecs.update_service(cluster=CLUSTER, service="dev-worker", desiredCount=3)

    _pause(aws, Sleeps(during=late_autoscaler))

    assert aws.desired()["dev-worker"] == 0


def test_pausing_twice_does_nothing_the_second_time(aws: Aws) -> None:
    _pause(aws)
    sleep = Sleeps()

    second = _pause(aws, sleep)

    assert not second["changed"] and second["state"] == "paused"
    assert "already paused" in second["message"]
    assert sleep.calls == []


def test_resume_brings_every_service_back_to_its_count(aws: Aws) -> None:
    _pause(aws)

    result = _resume(aws)

    assert result["changed"] and result["state"] == "paused"
    assert aws.desired() == {"dev-scheduler": 2, "dev-api": 2, "dev-worker": 1}
    assert aws.rules() == dict.fromkeys(RULES, "ENABLED")
    assert aws.alarm_actions() == dict.fromkeys(ALARMS, True)
    assert aws.suspended() == {f"service/{CLUSTER}/dev-api": dict.fromkeys(SUSPENDED, False)}


def test_resuming_a_running_environment_does_nothing(aws: Aws) -> None:
    result = _resume(aws)

    assert not result["changed"] and "already running" in result["message"]
    assert aws.alarm_actions() == dict.fromkeys(ALARMS, True)


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_nothing_changes_while_the_stack_is_being_deployed(aws: Aws, action: str) -> None:
    if action == "resume":
        _pause(aws)
    before = (aws.desired(), aws.rules(), aws.alarm_actions())
    aws.set_stack_status("UPDATE_IN_PROGRESS")

    result = handler.run({"action": action}, aws.config, aws.io(), sleep=Sleeps())

    assert not result["changed"] and "UPDATE_IN_PROGRESS" in result["message"]
    assert (aws.desired(), aws.rules(), aws.alarm_actions()) == before


def test_a_malformed_event_is_an_error_and_changes_nothing(aws: Aws) -> None:
    with pytest.raises(EventError, match="pause"):
        handler.run({"action": "stop"}, aws.config, aws.io(), sleep=Sleeps())
    assert aws.desired() == {"dev-scheduler": 2, "dev-api": 2, "dev-worker": 1}


def test_mw1_micro_pauses_its_one_service_without_waiting(aws: Aws) -> None:
    micro = replace(aws, config=replace(aws.config, services=SERVICES[:1], rules=(), alarms=()))
    sleep = Sleeps()

    result = handler.run({"action": "pause"}, micro.config, micro.io(), sleep=sleep)

    assert result["changed"] and sleep.calls == []
    assert aws.desired() == {"dev-scheduler": 0, "dev-api": 2, "dev-worker": 1}
    assert aws.rules() == dict.fromkeys(RULES, "ENABLED")


# --- faults ------------------------------------------------------------------------------


class Failing:
    """A client whose ``operation`` raises a ClientError (``times`` times), others pass."""

    def __init__(self, client: Any, operation: str, code: str, times: int = 1) -> None:
        self._client, self._operation, self._code, self.left = client, operation, code, times

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def fail(**kwargs: Any) -> Any:
            if self.left > 0:
                self.left -= 1
                raise ClientError({"Error": {"Code": self._code, "Message": "boom"}}, name)
            return attribute(**kwargs)

        return fail


def test_a_failed_call_names_the_call_and_the_resource(aws: Aws) -> None:
    events = Failing(aws.events, "disable_rule", "ThrottlingException")

    with pytest.raises(AwsCallError, match=r"events:DisableRule dev-autoscaler: Throttling"):
        _pause(aws, events=events)


def test_running_the_action_again_repairs_a_pause_cut_short(aws: Aws) -> None:
    ecs = Failing(aws.ecs, "update_service", "AccessDeniedException")
    with pytest.raises(AwsCallError, match="ecs:UpdateService dev-scheduler: AccessDenied"):
        _pause(aws, ecs=ecs)
    assert aws.rules() == dict.fromkeys(RULES, "DISABLED")  # done before the failure
    assert aws.desired()["dev-scheduler"] == 2

    sleep = Sleeps()
    result = _pause(aws, sleep)

    assert result["changed"] and result["state"] == "partial"
    assert aws.desired() == {"dev-scheduler": 0, "dev-api": 0, "dev-worker": 0}
    assert sleep.calls == []  # the rules were already off: nothing can be under way


def test_a_missing_service_is_named(aws: Aws) -> None:
    gone = replace(
        aws, config=replace(aws.config, services=(*SERVICES, Service("dev-gone", "triggerer", 1)))
    )
    with pytest.raises(AwsCallError, match="ecs:DescribeServices dev-gone: MISSING"):
        handler.run({"action": "pause"}, gone.config, gone.io(), sleep=Sleeps())


def test_a_missing_stack_is_named(aws: Aws) -> None:
    elsewhere = replace(aws, config=replace(aws.config, stack_name="Elsewhere"))
    with pytest.raises(AwsCallError, match="cloudformation:DescribeStacks Elsewhere"):
        handler.run({"action": "pause"}, elsewhere.config, elsewhere.io(), sleep=Sleeps())


def test_unusable_answers_are_errors() -> None:
    class Answers:
        def describe_stacks(self, **_: Any) -> Any:
            return {"Stacks": []}

        def describe_rule(self, **_: Any) -> Any:
            return {"State": "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"}

        def describe_services(self, **_: Any) -> Any:
            return {"services": [{"serviceName": "s", "status": "DRAINING", "desiredCount": 1}]}

    fake = Answers()
    config = Config("dev", STACK, CLUSTER, (Service("s", "scheduler", 1),), ("r",), (), 0)
    io = AwsIO(
        config,
        cloudformation=fake,
        ecs=fake,
        events=fake,
        application_autoscaling=fake,
        cloudwatch=fake,
    )
    with pytest.raises(AwsCallError, match="unusable answer"):
        io.stack_status()
    with pytest.raises(AwsCallError, match="unexpected state"):
        io.rule_enabled("r")
    with pytest.raises(AwsCallError, match="the service is DRAINING"):
        io.desired_count("s")


# --- the Lambda entry point --------------------------------------------------------------


def test_handler_reads_its_environment_and_answers(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler, "_CLIENTS", {})
    services = [[s.name, s.label, s.resume_count, int(s.scaled)] for s in SERVICES]
    for name, value in {
        "ENVIRONMENT_NAME": "dev",
        "STACK_NAME": STACK,
        "CLUSTER_NAME": CLUSTER,
        "SERVICES": json.dumps(services),
        "RULES": json.dumps(list(RULES)),
        "ALARMS": json.dumps(list(ALARMS)),
        "SETTLE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)

    paused = handler.handler({"action": "pause"}, None)
    again = handler.handler({"action": "pause"}, None)

    assert paused["changed"] and not again["changed"]
    assert aws.desired() == dict.fromkeys((s.name for s in SERVICES), 0)
    with pytest.raises(EventError):
        handler.handler({"action": "restart"}, None)
    assert core.parse_action({"action": "resume"}) is core.Action.RESUME
