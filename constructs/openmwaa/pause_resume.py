"""Pause and resume: a Lambda that stops every service of the environment and starts them
again, the schedules that call it, and the grant for `openmwaa pause` / `openmwaa resume`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Annotations, CfnElement, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_ssm as ssm

from constructs import Construct, IConstruct

from . import defaults
from .bundled_function import FunctionPlacement, bundled_function
from .nag_acknowledgements import acknowledge
from .nag_reasons import PAUSER_OUTSIDE_VPC, PAUSER_SCHEDULE_ROLE, pauser_findings
from .runtime import contracts

PARAMETER_NAME_FORMAT = "/openmwaa/{}/pauser"
"""The SSM parameter the `openmwaa pause|resume` commands find the function by."""
SCALABLE_TARGET_ID = "TaskCount"
"""The construct id `BaseService.auto_scale_task_count` gives its scalable target."""
SETTLE_MARGIN = Duration.seconds(10)
MAX_SETTLE_TIME = Duration.minutes(10)
"""The longest wait before the counts are set (the function's time-out is 15 minutes at most)."""
FUNCTION_TIME = Duration.minutes(3)
"""The function's time-out beyond `settle_time`: a call per service, rule and alarm."""
ASYNC_EVENT_AGE = Duration.hours(1)
"""A scheduled pause or resume Lambda could not run within an hour is dropped, not run late."""
ASYNC_RETRIES = 2
"""A failed scheduled run is retried (every step is idempotent)."""
ECS_DIMENSION = "ecs:service:DesiredCount"
ENVIRONMENT_SIZE_WARNING_ID = "openmwaa:pauserEnvironmentSize"
LAMBDA_ENVIRONMENT_LIMIT = 4096
"""Lambda's limit on the total size of a function's environment variables, in bytes."""
GENERATED_NAME_EXTRA = 15
"""What CloudFormation adds to the stack name and the logical ID in a name it generates
(`<stack>-<logical id>-<13 random characters>`)."""
UNRESOLVED_STACK_NAME_LENGTH = 30
"""A guess at the length of a stack name not known at synth."""


@dataclass(frozen=True)
class PausedService:
    """One ECS service the pauser stops and starts, and its count after a resume."""

    service: ecs.BaseService
    label: str
    resume_count: int

    @property
    def scaled(self) -> bool:
        """Whether Application Auto Scaling scales it (`auto_scale_task_count` was called)."""
        return isinstance(
            self.service.node.try_find_child(SCALABLE_TARGET_ID), ecs.ScalableTaskCount
        )


def in_flight_window(function: lambda_.Function) -> Duration:
    """How long after its schedule is disabled a scheduled `function` may still act: an
    asynchronous event may wait up to its maximum event age before it starts (60 s for the
    autoscaler), then run up to its time-out (60 s); plus a margin. At most
    `MAX_SETTLE_TIME`, which only a function without a maximum event age (Lambda's default is
    6 hours) reaches."""
    timeout = function.timeout.to_seconds() if function.timeout else 3
    config = function.node.try_find_child("EventInvokeConfig")
    cfn = config.node.default_child if config is not None else None
    age = getattr(cfn, "maximum_event_age_in_seconds", None)
    if not isinstance(age, int | float):
        age = 6 * 3600  # Lambda's default maximum event age
    window = int(timeout + age + SETTLE_MARGIN.to_seconds())
    return Duration.seconds(min(window, int(MAX_SETTLE_TIME.to_seconds())))


def settle_time(functions: Sequence[lambda_.Function]) -> Duration:
    """The pause's wait for `functions` (the autoscalers): the longest in-flight window, 0
    without any (mw1.micro)."""
    return Duration.seconds(max((in_flight_window(f).to_seconds() for f in functions), default=0))


def paused_services(
    services: Mapping[str, ecs.BaseService],
    worker_pools: Mapping[str, ecs.BaseService],
    *,
    schedulers: int,
    min_webservers: int,
    min_workers: int,
    pool_min_workers: Mapping[str, int],
) -> list[PausedService]:
    """Every service of the environment, labelled, with its resume count."""
    return [
        PausedService(
            service,
            label,
            resume_count(
                label,
                schedulers=schedulers,
                min_webservers=min_webservers,
                min_workers=min_workers,
                pool_min_workers=pool_min_workers,
            ),
        )
        for label, service in service_labels(services, worker_pools)
    ]


def service_labels(
    services: Mapping[str, ecs.BaseService], worker_pools: Mapping[str, ecs.BaseService]
) -> list[tuple[str, ecs.BaseService]]:
    """Each distinct service once with its label: the component (`all-in-one` for a service
    running several, as mw1.micro's), `worker:<queue>` for a pool."""
    names: dict[str, list[str]] = {}
    by_path: dict[str, ecs.BaseService] = {}
    for name, service in services.items():
        names.setdefault(service.node.path, []).append(name)
        by_path[service.node.path] = service
    labelled = [
        (found[0] if len(found) == 1 else "all-in-one", by_path[path])
        for path, found in names.items()
    ]
    labelled += [(f"worker:{queue}", service) for queue, service in worker_pools.items()]
    return labelled


def resume_count(
    label: str,
    *,
    schedulers: int,
    min_webservers: int,
    min_workers: int,
    pool_min_workers: Mapping[str, int],
) -> int:
    """A service's desired count after a resume: what the environment starts it with (the
    autoscaler and Application Auto Scaling take over from there)."""
    if label.startswith("worker:"):
        return pool_min_workers[label.removeprefix("worker:")]
    return {
        contracts.SCHEDULER: schedulers,
        contracts.API_SERVER: min_webservers,
        contracts.EXECUTION_API: min_webservers,
        contracts.WORKER: min_workers,
    }.get(label, 1)


class EnvironmentPauser(Construct):
    """Pauses the environment (every service at 0) and resumes it, on schedules or on demand.

    A Lambda (`function`, `lambdas/pauser`) invoked with `{"action": "pause"}` disables the
    autoscaler rules (`autoscaler_rules`), suspends Application Auto Scaling on the services
    it scales, disables the actions of `alarms` (some treat missing data as breaching), waits
    `settle_time` (an autoscaler invocation already under way may still set a count), then
    sets every service to 0. `{"action": "resume"}` lets Application Auto Scaling scale
    again, sets each service to its resume count, enables the rules and the alarms' actions.
    Pausing a paused environment, resuming a running one, and either while the stack is
    being deployed do nothing and say why. Aurora pauses by itself once nothing is connected
    (`database_auto_pause`, see `MetadataDatabase`); metadata, DAGs and logs stay.

    With `pause_schedule` and `resume_schedule` (EventBridge Scheduler cron expressions, in
    `schedule_time_zone`), two schedules invoke it through a role that may invoke only this
    function. `openmwaa pause ENV` / `openmwaa resume ENV` find it through the SSM parameter
    `/openmwaa/<environment_name>/pauser` (`parameter`); `grant_pause_resume` lets a
    principal use them. docs/pause.md has the details.

    Its permissions name this environment's services, rules, alarms and stack; Application
    Auto Scaling's RegisterScalableTarget cannot name a target (its ARN holds a random id), so
    it is limited to ECS services' desired counts.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        cluster: ecs.ICluster,
        services: Sequence[PausedService],
        autoscaler_rules: Sequence[events.IRule],
        alarms: Sequence[cloudwatch.IAlarm],
        placement: FunctionPlacement,
        settle_time: Duration | None = None,
        database_auto_pause: Duration | None = None,
        pause_schedule: str | None = None,
        resume_schedule: str | None = None,
        schedule_time_zone: str = defaults.SCHEDULE_TIME_ZONE,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.services = tuple(services)
        settle_time = settle_time or Duration.seconds(0)
        self.settle_time = settle_time
        """How long a pause waits between disabling the autoscaler rules and setting the
        counts (0 without an autoscaler)."""
        config = [
            [p.service.service_name, p.label, p.resume_count, int(p.scaled)] for p in services
        ]
        self.function = bundled_function(
            self,
            "Function",
            handler="pauser.handler.handler",
            description=f"Airflow environment {environment_name}: pauses and resumes it",
            timeout=Duration.seconds(settle_time.to_seconds() + FUNCTION_TIME.to_seconds()),
            memory_size=128,
            placement=placement.outside_vpc(),
            environment={
                **self._plain_variables(environment_name, settle_time, database_auto_pause),
                "CLUSTER_NAME": cluster.cluster_name,
                "SERVICES": stack.to_json_string(config),
                "RULES": stack.to_json_string([rule.rule_name for rule in autoscaler_rules]),
                "ALARMS": stack.to_json_string([alarm.alarm_name for alarm in alarms]),
            },
        )
        self._warn_when_too_large(
            {**self._plain_variables(environment_name, settle_time, database_auto_pause)},
            services,
            autoscaler_rules,
            alarms,
        )
        self.function.configure_async_invoke(
            max_event_age=ASYNC_EVENT_AGE, retry_attempts=ASYNC_RETRIES
        )
        self._grant_own_resources(stack, services, autoscaler_rules, alarms)
        acknowledge(self.function, [PAUSER_OUTSIDE_VPC])
        acknowledge(
            self.function,
            pauser_findings(
                self.function, stack_name_for_nag(self), scaled=any(p.scaled for p in services)
            ),
        )

        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=PARAMETER_NAME_FORMAT.format(environment_name),
            description=f"Airflow environment {environment_name}: its pauser function",
            string_value=stack.to_json_string(
                {
                    "function": self.function.function_name,
                    "region": stack.region,
                    "timeout": int(self.function.timeout.to_seconds())
                    if self.function.timeout
                    else 0,
                }
            ),
        )
        """`/openmwaa/<environment_name>/pauser`: `{"function", "region", "timeout"}`."""

        self.schedule_role: iam.Role | None = None
        """The role EventBridge Scheduler invokes the function with (schedules only)."""
        self.pause_schedule: scheduler.CfnSchedule | None = None
        self.resume_schedule: scheduler.CfnSchedule | None = None
        if pause_schedule is not None and resume_schedule is not None:
            self._add_schedules(
                environment_name, pause_schedule, resume_schedule, schedule_time_zone
            )

    def _plain_variables(
        self, environment_name: str, settle_time: Duration, auto_pause: Duration | None
    ) -> dict[str, str]:
        return {
            "ENVIRONMENT_NAME": environment_name,
            "STACK_NAME": Stack.of(self).stack_name,
            "SETTLE_SECONDS": str(int(settle_time.to_seconds())),
            "DATABASE_AUTO_PAUSE_SECONDS": str(int(auto_pause.to_seconds()) if auto_pause else 0),
        }

    def _warn_when_too_large(
        self,
        plain: Mapping[str, str],
        services: Sequence[PausedService],
        rules: Sequence[events.IRule],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        """Warn when the function's variables, once CloudFormation has named the services,
        rules and alarms, may pass Lambda's 4 KB (about five worker pools and more)."""
        size = estimated_environment_size(self, plain, services, rules, alarms)
        self.estimated_environment_size = size
        """The estimated size of the function's environment variables, in bytes."""
        if size > LAMBDA_ENVIRONMENT_LIMIT:
            Annotations.of(self).add_warning_v2(
                ENVIRONMENT_SIZE_WARNING_ID,
                f"the pauser's environment variables name {len(services)} services, "
                f"{len(rules)} rules and {len(alarms)} alarms: about {size} bytes once "
                f"CloudFormation names them, over Lambda's {LAMBDA_ENVIRONMENT_LIMIT}, so the "
                "deploy may fail; use fewer worker pools or a shorter stack name",
            )

    def _grant_own_resources(
        self,
        stack: Stack,
        services: Sequence[PausedService],
        rules: Sequence[events.IRule],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        add = self.function.add_to_role_policy
        add(
            iam.PolicyStatement(
                sid="EnvironmentServices",
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=[p.service.service_arn for p in services],
            )
        )
        if rules:
            add(
                iam.PolicyStatement(
                    sid="AutoscalerRules",
                    actions=["events:DescribeRule", "events:DisableRule", "events:EnableRule"],
                    resources=[rule.rule_arn for rule in rules],
                )
            )
        if alarms:
            add(
                iam.PolicyStatement(
                    sid="EnvironmentAlarmActions",
                    actions=["cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions"],
                    resources=[alarm.alarm_arn for alarm in alarms],
                )
            )
        if any(p.scaled for p in services):
            add(
                iam.PolicyStatement(
                    sid="SuspendServiceScaling",
                    actions=["application-autoscaling:RegisterScalableTarget"],
                    resources=[scalable_target_arns(self)],
                    conditions={
                        "StringEquals": {
                            "application-autoscaling:service-namespace": "ecs",
                            "application-autoscaling:scalable-dimension": ECS_DIMENSION,
                        }
                    },
                )
            )
        add(
            iam.PolicyStatement(
                sid="StackStatus",
                actions=["cloudformation:DescribeStacks"],
                resources=[stack_arns(self)],
            )
        )

    def _add_schedules(
        self, environment_name: str, pause: str, resume: str, time_zone: str
    ) -> None:
        stack = Stack.of(self)
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description=f"Airflow environment {environment_name}: schedules of its pauser",
        )
        # Only the function itself (no `:*` qualifier): the schedules invoke $LATEST.
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            )
        )
        acknowledge(self.schedule_role, [PAUSER_SCHEDULE_ROLE])
        schedules = {}
        for action, expression in (("pause", pause), ("resume", resume)):
            schedules[action] = scheduler.CfnSchedule(
                self,
                "PauseSchedule" if action == "pause" else "ResumeSchedule",
                description=f"Airflow environment {environment_name}: {action} it",
                schedule_expression=expression,
                schedule_expression_timezone=time_zone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=self.function.function_arn,
                    role_arn=self.schedule_role.role_arn,
                    input=json.dumps({"action": action}),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=int(ASYNC_EVENT_AGE.to_seconds()),
                        maximum_retry_attempts=ASYNC_RETRIES,
                    ),
                ),
            )
        self.pause_schedule = schedules["pause"]
        self.resume_schedule = schedules["resume"]

    def grant_pause_resume(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let `grantee` pause and resume the environment: `lambda:InvokeFunction` on the
        pauser, and `ssm:GetParameter` on its parameter (how the CLI finds it)."""
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["lambda:InvokeFunction"],
            resource_arns=[self.function.function_arn],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ssm:GetParameter"],
            resource_arns=[self.parameter.parameter_arn],
        )
        return grant


def estimated_environment_size(
    scope: Construct,
    plain: Mapping[str, str],
    services: Sequence[PausedService],
    rules: Sequence[events.IRule],
    alarms: Sequence[cloudwatch.IAlarm],
) -> int:
    """The size of the pauser's environment variables once deployed: the names CloudFormation
    generates for the services, rules and alarms are `<stack>-<logical id>-<13 characters>`
    (rules cut to 64), the cluster's `<stack>-<logical id>-<13>` too."""
    stack = Stack.of(scope)
    stack_length = (
        UNRESOLVED_STACK_NAME_LENGTH
        if Token.is_unresolved(stack.stack_name)
        else len(stack.stack_name)
    )

    def generated(construct: IConstruct, limit: int = 255) -> str:
        child = construct.node.default_child
        logical = stack.resolve(child.logical_id) if isinstance(child, CfnElement) else ""
        length = stack_length + len(str(logical)) + GENERATED_NAME_EXTRA
        return "x" * min(limit, length)

    config = [[generated(p.service), p.label, p.resume_count, 1] for p in services]
    variables = {
        **plain,
        "CLUSTER_NAME": "x" * (stack_length + 40),
        "SERVICES": json.dumps(config, separators=(",", ":")),
        "RULES": json.dumps([generated(rule, 64) for rule in rules], separators=(",", ":")),
        "ALARMS": json.dumps([generated(alarm) for alarm in alarms], separators=(",", ":")),
    }
    return sum(len(name) + len(value) for name, value in variables.items())


def scalable_target_arns(scope: Construct) -> str:
    """Every Application Auto Scaling scalable target of the account and region: a target's
    ARN ends in a random id no template can name."""
    return Stack.of(scope).format_arn(
        service="application-autoscaling", resource="scalable-target", resource_name="*"
    )


def stack_arns(scope: Construct) -> str:
    """The environment's stack, by name (`stack/<name>/*`: AWS authorizes DescribeStacks on
    the stack's ARN, whose last part is the stack's id)."""
    stack = Stack.of(scope)
    return stack.format_arn(
        service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*"
    )


def stack_name_for_nag(scope: Construct) -> str:
    """The stack name as cdk-nag renders it in finding ids."""
    name = Stack.of(scope).stack_name
    return "<AWS::StackName>" if Token.is_unresolved(name) else name
