"""End to end: pause and resume the running environment through the pauser, under IAM.

The pauser's own handler (``pauser.handler.run``) runs in this process with the function's
environment variables from the template (resolved against the local resources) and the
credentials of a moto user holding exactly its role's policies, under the e2e's IAM
enforcement (tests/e2e/iam.py). moto holds the template's ECS services (provision.py creates
them); this module adds what the pauser also acts on and provision.py does not create: the
stack (for its status), the autoscaler's EventBridge rules, the CloudWatch alarms and any
scalable target, each under the name CloudFormation would generate. ECS is played by
:func:`act_as_ecs`: it stops the components whose service's desired count is now 0 and starts
those above 0, as ECS would.

The story: a DAG runs to success; a resume of the running environment does nothing; a pause
sets every service to 0, turns the autoscaler rules and the alarms' actions off, and the
components stop; a second pause does nothing; a resume brings everything back, the components
start and the environment reports healthy; the run from before the pause is still in the
history and a new run succeeds. Every call the pauser made was modelled and allowed, and its
role cannot touch a rule that is not the autoscaler's. The environment is left running and
healthy (the modules after this one use it).

What this cannot show: Aurora pausing itself (PostgreSQL here never pauses), ECS's own task
handling, EventBridge Scheduler firing, a real CloudFormation deploy in progress (the unit
tests cover that branch against moto in process).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pauser import core, handler
from pauser.handler import AwsIO

from .cfn import resources_of_type, task_specs
from .conftest import AirflowUnderTest
from .principals import create_user, role_policies
from .provision import ACCOUNT, REGION
from .running import STOP_ORDER
from .test_airflow_e2e import HELLO, _run_path, _trigger, _wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

HANDLER = "pauser.handler.handler"
SETTLE_SECONDS = 2.0
"""The test's wait for an autoscaler run under way (the template's is 130 s)."""
PAUSER_ACTIONS = {
    "cloudformation:DescribeStacks",
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "events:DescribeRule",
    "events:DisableRule",
    "events:EnableRule",
    "cloudwatch:DisableAlarmActions",
    "cloudwatch:EnableAlarmActions",
}


@dataclass
class Pauser:
    """The pauser as deployed here: its configuration, its role, and what it acts on."""

    airflow: AirflowUnderTest
    config: core.Config
    role: str
    services: dict[str, str]
    """ECS service name -> the logical ID of its task definition."""
    rules: list[str]
    alarms: list[str]
    other_rules: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def io(self) -> AwsIO:
        principal = self.airflow.principals[self.role]
        client = self.airflow.aws.client
        return AwsIO(
            self.config,
            cloudformation=client("cloudformation", principal),
            ecs=client("ecs", principal),
            events=client("events", principal),
            application_autoscaling=client("application-autoscaling", principal),
            cloudwatch=client("cloudwatch", principal),
        )

    def run(self, action: str) -> dict[str, Any]:
        result: dict[str, Any] = handler.run(
            {"action": action}, self.config, self.io(), sleep=self._sleep
        )
        print(f"\nPAUSE_E2E {action}: {result['message']}")
        return result

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)

    def desired(self) -> dict[str, int]:
        ecs = self.airflow.aws.client("ecs")
        counts = {}
        for name in self.services:
            answer = ecs.describe_services(cluster=self.config.cluster_name, services=[name])
            counts[name] = answer["services"][0]["desiredCount"]
        return counts

    def rule_states(self) -> dict[str, str]:
        events = self.airflow.aws.client("events")
        return {rule: events.describe_rule(Name=rule)["State"] for rule in self.rules}

    def alarm_actions(self) -> dict[str, bool]:
        cloudwatch = self.airflow.aws.client("cloudwatch")
        alarms = cloudwatch.describe_alarms(AlarmNames=self.alarms)["MetricAlarms"]
        return {a["AlarmName"]: a["ActionsEnabled"] for a in alarms}


def _generated_name(logical_id: str, limit: int = 255) -> str:
    """A name as CloudFormation generates it: ``<stack>-<logical id>-<random>``."""
    return f"OpenMwaa-{logical_id}-E2E0PAUSE0AB"[:limit]


def _function(template: dict[str, Any]) -> dict[str, Any]:
    for resource in resources_of_type(template, "AWS::Lambda::Function").values():
        if resource.get("Properties", {}).get("Handler") == HANDLER:
            return dict(resource["Properties"])
    raise AssertionError(f"the template has no function with handler {HANDLER}")


def _deploy_what_the_pauser_acts_on(airflow: AirflowUnderTest, stack_name: str) -> None:
    """Stand in for CloudFormation for the resources provision.py does not create: the
    stack, the EventBridge rules, the alarms and the scalable targets, named as CloudFormation
    names them, and known to the resolver."""
    template, resolver = airflow.template, airflow.provisioned.resolver
    cloudformation = airflow.aws.client("cloudformation")
    stacks = [s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]]
    if stack_name not in stacks:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(
                {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}
            ),
        )
    events = airflow.aws.client("events")
    for logical_id, resource in resources_of_type(template, "AWS::Events::Rule").items():
        if logical_id in resolver.refs:
            continue
        name = _generated_name(logical_id, 64)
        props = resource.get("Properties", {})
        arn = events.put_rule(
            Name=name,
            ScheduleExpression=props.get("ScheduleExpression", "rate(1 minute)"),
            State=props.get("State", "ENABLED"),
        )["RuleArn"]
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = arn
    cloudwatch = airflow.aws.client("cloudwatch")
    for logical_id in resources_of_type(template, "AWS::CloudWatch::Alarm"):
        if logical_id in resolver.refs:
            continue
        name = _generated_name(logical_id)
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="OpenMWAA",
            MetricName="E2E",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="LessThanThreshold",
            AlarmActions=[f"arn:aws:sns:{REGION}:{ACCOUNT}:openmwaa-alarms"],
        )
        resolver.refs[logical_id] = name
        resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
        )
    scaling = airflow.aws.client("application-autoscaling")
    targets = resources_of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    for resource in targets.values():
        props = resource["Properties"]
        scaling.register_scalable_target(
            ServiceNamespace=props["ServiceNamespace"],
            ResourceId=resolver.resolve(props["ResourceId"]),
            ScalableDimension=props["ScalableDimension"],
            MinCapacity=int(props["MinCapacity"]),
            MaxCapacity=int(props["MaxCapacity"]),
        )


@pytest.fixture(scope="module")
def pauser(airflow: AirflowUnderTest) -> Iterator[Pauser]:
    function = _function(airflow.template)
    variables = function["Environment"]["Variables"]
    _deploy_what_the_pauser_acts_on(airflow, variables["STACK_NAME"])
    resolver = airflow.provisioned.resolver
    env = {name: resolver.resolve(value) for name, value in variables.items()}
    config = replace(core.Config.from_env(env), settle_seconds=SETTLE_SECONDS)
    role = str(function["Role"]["Fn::GetAtt"][0])
    if role not in airflow.principals:
        documents = role_policies(airflow.template, role, resolver).documents
        airflow.principals[role] = create_user(airflow.aws.client("iam"), role, documents)
    task_of = {
        resolver.attributes[(logical_id, "Name")]: resource["Properties"]["TaskDefinition"]["Ref"]
        for logical_id, resource in resources_of_type(airflow.template, "AWS::ECS::Service").items()
    }
    rules = list(config.rules)
    every_rule = [
        resolver.refs[logical_id]
        for logical_id in resources_of_type(airflow.template, "AWS::Events::Rule")
    ]
    found = Pauser(
        airflow,
        config,
        role,
        {s.name: task_of[s.name] for s in config.services},
        rules,
        list(config.alarms),
        [r for r in every_rule if r not in rules],
    )
    yield found
    # Leave the environment running whatever happened above.
    if 0 in pauser_counts(airflow, config).values():
        handler.run({"action": "resume"}, config, found.io())
    act_as_ecs(airflow, config)


def pauser_counts(airflow: AirflowUnderTest, config: core.Config) -> dict[str, int]:
    ecs = airflow.aws.client("ecs")
    return {
        s.name: ecs.describe_services(cluster=config.cluster_name, services=[s.name])["services"][
            0
        ]["desiredCount"]
        for s in config.services
    }


def act_as_ecs(airflow: AirflowUnderTest, config: core.Config) -> tuple[list[str], list[str]]:
    """Do what ECS does for the desired counts on moto: stop every component whose service is
    at 0 (SIGTERM, grace, as ECS stops a task; the scheduler last), start every component whose
    service is above 0 and not running, and wait until the environment is healthy. Returns
    (stopped, started)."""
    counts = pauser_counts(airflow, config)
    resolver = airflow.provisioned.resolver
    service_of_task = {
        resource["Properties"]["TaskDefinition"]["Ref"]: resolver.attributes[(logical_id, "Name")]
        for logical_id, resource in resources_of_type(airflow.template, "AWS::ECS::Service").items()
    }
    component_count = {
        container.component: counts[service_of_task[task.logical_id]]
        for task in task_specs(airflow.template)
        if task.logical_id in service_of_task
        for container in task.containers
        if container.component in airflow.components
    }
    stopped = []
    for name in STOP_ORDER:
        process = airflow.processes.get(name)
        if process and component_count.get(name) == 0 and process.popen.poll() is None:
            process.stop(grace=60)
            stopped.append(name)
    to_start = sorted(
        n
        for n in airflow.components
        if component_count.get(n, 0) > 0 and airflow.processes[n].popen.poll() is not None
    )
    exited = sorted(n for n in airflow.components if airflow.processes[n].popen.poll() is not None)
    if to_start:
        # restart_exited starts every exited component: only right when all are wanted.
        assert to_start == exited, (to_start, exited, component_count)
    started = airflow.restart_exited() if to_start else []
    return stopped, started


@dataclass
class Story:
    """What the ordered tests of this module pass on."""

    run_before: str = ""


STORY = Story()


def test_a_dag_run_succeeds_before_the_pause(airflow: AirflowUnderTest, pauser: Pauser) -> None:
    STORY.run_before = _trigger(airflow, HELLO)
    assert _wait_for_run(airflow, HELLO, STORY.run_before, timeout=300) == "success"


def test_resuming_a_running_environment_does_nothing(pauser: Pauser) -> None:
    before = (pauser.desired(), pauser.rule_states(), pauser.alarm_actions())

    result = pauser.run("resume")

    assert not result["changed"] and "already running" in result["message"], result
    assert (pauser.desired(), pauser.rule_states(), pauser.alarm_actions()) == before
    assert all(state == "ENABLED" for state in before[1].values())


def test_pause_stops_every_service_and_turns_the_autoscaler_and_alarms_off(
    airflow: AirflowUnderTest, pauser: Pauser
) -> None:
    result = pauser.run("pause")

    assert result["changed"] and result["state"] == "running", result
    assert set(pauser.desired().values()) == {0}, pauser.desired()
    assert set(pauser.rule_states().values()) == {"DISABLED"}
    assert pauser.alarm_actions() and set(pauser.alarm_actions().values()) == {False}
    assert pauser.sleeps == [SETTLE_SECONDS]  # after the rules were disabled, before the counts
    stopped, started = act_as_ecs(airflow, pauser.config)
    assert sorted(stopped) == sorted(airflow.components) and started == []
    assert all(p.popen.poll() is not None for p in airflow.processes.values())


def test_pausing_a_paused_environment_does_nothing(pauser: Pauser) -> None:
    waited = len(pauser.sleeps)

    result = pauser.run("pause")

    assert not result["changed"] and "already paused" in result["message"], result
    assert result["steps"] == [] and len(pauser.sleeps) == waited


def test_resume_brings_the_environment_back_healthy(
    airflow: AirflowUnderTest, pauser: Pauser
) -> None:
    result = pauser.run("resume")

    assert result["changed"] and result["state"] == "paused", result
    expected = {s.name: s.resume_count for s in pauser.config.services}
    assert pauser.desired() == expected
    assert set(pauser.rule_states().values()) == {"ENABLED"}
    assert set(pauser.alarm_actions().values()) == {True}
    _, started = act_as_ecs(airflow, pauser.config)  # waits until healthy
    assert sorted(started) == sorted(airflow.components)


def test_history_is_intact_and_a_new_run_succeeds_after_the_resume(
    airflow: AirflowUnderTest, pauser: Pauser
) -> None:
    assert STORY.run_before, "the run before the pause did not happen"
    before = airflow.request("GET", _run_path(HELLO, STORY.run_before))
    assert before["state"] == "success"

    run_after = _trigger(airflow, HELLO)

    assert _wait_for_run(airflow, HELLO, run_after, timeout=300) == "success", airflow.diagnostics()


def test_the_pausers_calls_were_modelled_allowed_and_scoped(
    airflow: AirflowUnderTest, pauser: Pauser
) -> None:
    decisions = [d for d in airflow.decisions() if d["principal"] == pauser.role]

    assert [d for d in decisions if not d["modelled"] or not d["allowed"]] == []
    assert {d["action"] for d in decisions} >= PAUSER_ACTIONS
    assert pauser.other_rules, "expected a rule that is not the autoscaler's (the DAG sync's)"
    events = airflow.aws.client("events", airflow.principals[pauser.role])
    with pytest.raises(ClientError) as refused:
        events.disable_rule(Name=pauser.other_rules[0])
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403, error
    refusals = [
        d
        for d in airflow.decisions()
        if d["principal"] == pauser.role
        and d["action"] == "events:DisableRule"
        and d["resource"].endswith(f":rule/{pauser.other_rules[0]}")
    ]
    assert [d["allowed"] for d in refusals] == [False]
    assert airflow.aws.client("events").describe_rule(Name=pauser.other_rules[0])["State"] == (
        "ENABLED"
    )
