"""The environment's CloudWatch dashboard and alarms."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from . import airflow_metrics as am
from .airflow_metrics import AirflowMetrics
from .container_environment import TASK_QUEUED_TIMEOUT_SECONDS
from .nag_acknowledgements import acknowledge
from .nag_reasons import ALARM_TOPIC_WITHOUT_CMK
from .runtime import contracts
from .services import watched_services

PERIOD = Duration.minutes(1)

SCHEDULER_HEARTBEAT_ALARM_OFF_WARNING_ID = "openmwaa:schedulerHeartbeatAlarmOff"
SCHEDULER_HEARTBEAT_MISSING_MINUTES = 3
"""A scheduler heartbeats every 5 s (`[scheduler] scheduler_heartbeat_sec`), about 12 a
minute: three minutes without one is a scheduler down, not a late packet."""
SERVICE_BELOW_DESIRED_MINUTES = 5
"""Above a new task's start (`container_environment.FARGATE_START_SECONDS`, 3 minutes:
placement, image pull, containers started); startup.sh and requirements run after that,
inside a running task."""
CONTAINER_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
DATABASE_AT_MAX_MINUTES = 15
OLDEST_QUEUED_TASK_AGE_SECONDS = TASK_QUEUED_TIMEOUT_SECONDS // 2
"""600 s: twice a worker's usual start from zero (the autoscaler's minute, the Fargate start,
Airflow's boot: about 5 minutes) and half of `[scheduler] task_queued_timeout`, so the alarm
fires before Airflow fails the waiting tasks."""
OLDEST_QUEUED_TASK_MINUTES = 3
IMPORT_ERRORS_PERIOD = Duration.minutes(5)
TASK_FAILURE_RATE_PERIOD = Duration.minutes(15)
TASK_FAILURE_RATE_MIN_FINISHED = 5
"""Finished tasks a 15-minute window needs before its failure rate counts: one failed task
alone is not 100 %."""


def environment_metric(
    name: str, environment_name: str, statistic: str = "Maximum"
) -> cloudwatch.Metric:
    """One of the autoscaler's metrics (`OpenMWAA` namespace, dimension Environment)."""
    return cloudwatch.Metric(
        namespace=contracts.METRIC_NAMESPACE,
        metric_name=name,
        dimensions_map={contracts.ENVIRONMENT_DIMENSION: environment_name},
        statistic=statistic,
        period=PERIOD,
    )


class AirflowMonitoring(Construct):
    """A dashboard `airflow-<environment>` and the alarms an operator needs first.

    Dashboard: queued and running tasks with desired and running workers (the autoscaler's
    metrics), DAG sync results and DAG syntax errors, api-server health behind the load
    balancer, the database's capacity and connections, CPU/memory per service (ECS's own
    AWS/ECS metrics, free, no Container Insights needed), and from Airflow's own metrics (those in
    the allow-list) the Scheduler, executor, DAGs and task instance panels.

    Alarms notify `alarm_topic` (default: a new SSL-only SNS topic, encrypted with `kms_key`
    when given, whose key policy then lets CloudWatch publish; without `kms_key` it is not
    encrypted at rest, because CloudWatch alarms cannot publish to a topic encrypted with the
    AWS managed SNS key. Its topic policy lets CloudWatch alarms of this account publish,
    which the SSL-only policy would otherwise shut out. Subscribe your e-mail, chat or pager
    to it. A topic you give must allow the same, and must not use the AWS managed SNS key).
    `alarms` holds them by key (docs/operations.md has a runbook line for each):
    `queue_backlog_at_max` when tasks stay queued for 15 minutes while the workers are at
    `max_workers`; `autoscaler_errors` and `dag_sync_errors` when those functions fail, and
    `autoscaler_errors:<queue>` for each worker pool's autoscaler;
    `api_server_unhealthy` when no api-server task passes the health check for 5 minutes;
    `requirements_build_failed` when the DAG sync reports that the build of the current
    requirements.txt failed or stalled (containers then pip-install it at every start);
    `scheduler_heartbeat_missing` (when SchedulerHeartbeat is published);
    `service_below_desired:<name>` per service (the autoscaler's TasksBelowDesired; on
    mw1.micro, which has no autoscaler, Container Insights' task counts when
    `container_insights`, else the api-server target's healthy count, since its one task runs
    every component); `database_at_max_capacity`;
    `oldest_queued_task_age` (`:<queue>` per pool); `dag_import_errors`; and, given
    `task_failure_rate`, `task_failure_rate`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        max_workers: int,
        services: dict[str, ecs.FargateService],
        dag_sync: lambda_.IFunction,
        autoscaler: lambda_.IFunction | None,
        database: rds.DatabaseCluster,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        alarm_topic: sns.ITopic | None = None,
        kms_key: kms.IKey | None = None,
        pool_autoscalers: Mapping[str, lambda_.IFunction] | None = None,
        airflow_metrics: AirflowMetrics,
        queues: Mapping[str, sqs.IQueue],
        database_max_capacity: float,
        task_failure_rate: float | None = None,
        container_insights: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._environment_name = environment_name
        self._metrics = airflow_metrics
        self.owns_alarm_topic = alarm_topic is None
        self.alarm_topic = alarm_topic or sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Airflow {environment_name} alarms",
            master_key=kms_key,
            enforce_ssl=True,
        )
        if alarm_topic is None and kms_key is None:
            acknowledge(self.alarm_topic, ALARM_TOPIC_WITHOUT_CMK)
        if alarm_topic is None:
            same_account = {"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
            self.alarm_topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudWatchAlarmsToPublish",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.alarm_topic.topic_arn],
                    conditions=same_account,
                )
            )
            if kms_key is not None:
                kms_key.add_to_resource_policy(
                    iam.PolicyStatement(
                        sid="AllowCloudWatchAlarmsToPublish",
                        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                        resources=["*"],
                        conditions=same_account,
                    )
                )
        queued = environment_metric(contracts.METRIC_QUEUED_TASKS, environment_name)
        running = environment_metric(contracts.METRIC_RUNNING_TASKS, environment_name)
        desired = environment_metric(contracts.METRIC_DESIRED_WORKERS, environment_name)
        running_workers = environment_metric(contracts.METRIC_RUNNING_WORKERS, environment_name)

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        if autoscaler is not None:
            backlog_at_max = cloudwatch.MathExpression(
                expression=f"IF(desired >= {max_workers} AND queued > 0, queued, 0)",
                using_metrics={"desired": desired, "queued": queued},
                period=PERIOD,
                label="Queued tasks while at max workers",
            )
            self.alarms["queue_backlog_at_max"] = backlog_at_max.create_alarm(
                self,
                "QueueBacklogAtMaxWorkers",
                alarm_description=(
                    f"Airflow {environment_name}: tasks have waited 15 minutes with workers at "
                    f"max_workers ({max_workers}); raise max_workers or the environment class"
                ),
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=15,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self.alarms["autoscaler_errors"] = self._function_errors(
                "AutoscalerErrors",
                autoscaler,
                f"Airflow {environment_name}: the worker "
                "autoscaler failed 3 times in 5 minutes; the worker count is held",
            )
        for queue, function in sorted((pool_autoscalers or {}).items()):
            self.alarms[f"autoscaler_errors:{queue}"] = self._function_errors(
                f"PoolAutoscalerErrors-{queue}",
                function,
                f"Airflow {environment_name}: the autoscaler of worker pool {queue} failed 3 "
                "times in 5 minutes; the pool's worker count is held",
            )
        self.alarms["dag_sync_errors"] = self._function_errors(
            "DagSyncErrors",
            dag_sync,
            f"Airflow {environment_name}: the DAG sync failed 3 "
            "times in 5 minutes; EFS may lag behind the bucket until reconcile succeeds",
        )
        build_failed = environment_metric(
            contracts.METRIC_REQUIREMENTS_BUILD_FAILED, environment_name
        )
        self.alarms["requirements_build_failed"] = build_failed.with_(
            period=Duration.minutes(15)
        ).create_alarm(
            self,
            "RequirementsBuildFailed",
            alarm_description=(
                f"Airflow {environment_name}: the requirements build failed or stalled; "
                "containers install requirements.txt with pip at every start until it "
                "succeeds. Read the worker log group's requirements-build streams"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        healthy = target_group.metrics.healthy_host_count(period=PERIOD, statistic="Minimum")
        self.alarms["api_server_unhealthy"] = healthy.create_alarm(
            self,
            "ApiServerUnhealthy",
            alarm_description=f"Airflow {environment_name}: no healthy api-server for 5 minutes",
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=5,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

        self._scheduler_heartbeat_alarm(services)
        self._service_alarms(
            services,
            published=autoscaler is not None,
            container_insights=container_insights,
            healthy=healthy,
        )
        self.alarms["database_at_max_capacity"] = database.metric_serverless_database_capacity(
            period=PERIOD, statistic="Maximum"
        ).create_alarm(
            self,
            "DatabaseAtMaxCapacity",
            alarm_description=(
                f"Airflow {environment_name}: the metadata database has been at its maximum "
                f"capacity ({database_max_capacity:g} ACUs) for {DATABASE_AT_MAX_MINUTES} "
                "minutes; scheduling and the UI slow down. Raise the environment class or "
                "database_props serverless_v2_max_capacity"
            ),
            threshold=database_max_capacity,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=DATABASE_AT_MAX_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for queue_name in sorted(queues):
            self._oldest_queued_task_alarm(queue_name, queues[queue_name])
        self._dag_import_errors_alarm()
        if task_failure_rate is not None:
            self._task_failure_rate_alarm(task_failure_rate)

        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"airflow-{environment_name}"
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tasks and workers",
                left=[queued, running],
                right=[desired, running_workers],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="DAG sync",
                left=[
                    dag_sync.metric_invocations(period=PERIOD),
                    dag_sync.metric_errors(period=PERIOD),
                ],
                right=[
                    environment_metric(contracts.METRIC_DAG_SYNTAX_ERRORS, environment_name, "Sum"),
                    environment_metric(contracts.METRIC_DUPLICATE_DAG_IDS, environment_name, "Sum"),
                    build_failed,
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Web (api-server)",
                left=[healthy, target_group.metrics.unhealthy_host_count(period=PERIOD)],
                right=[
                    load_balancer.metrics.http_code_elb(
                        elbv2.HttpCodeElb.ELB_5XX_COUNT, period=PERIOD
                    ),
                    target_group.metrics.target_response_time(period=PERIOD),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Metadata database",
                left=[database.metric_serverless_database_capacity(period=PERIOD)],
                right=[database.metric_database_connections(period=PERIOD)],
                width=12,
            ),
        )
        unique = {s.node.path: s for s in services.values()}
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="CPU per service (%)",
                left=[s.metric_cpu_utilization(period=PERIOD) for s in unique.values()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Memory per service (%)",
                left=[s.metric_memory_utilization(period=PERIOD) for s in unique.values()],
                width=12,
            ),
        )
        self._airflow_panels()

    def _airflow_panels(self) -> None:
        """The Scheduler and DAGs panels, from Airflow's metrics in the allow-list (a graph
        whose metrics are all left out is left out)."""
        panels: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
            (
                "Scheduler",
                (am.SCHEDULER_HEARTBEAT,),
                (am.SCHEDULER_LOOP_DURATION, am.CRITICAL_SECTION_DURATION),
            ),
            ("Executor slots and tasks", (am.OPEN_SLOTS,), (am.QUEUED_TASKS, am.RUNNING_TASKS)),
            ("DAGs", (am.DAG_BAG_SIZE, am.IMPORT_ERRORS), (am.TOTAL_PARSE_TIME,)),
            ("Task instances", (am.TASK_SUCCESSES, am.TASK_FAILURES), ()),
        ]
        widgets = []
        for title, left, right in panels:
            metrics = [
                [
                    self._metrics.metric(name).with_(label=name)
                    for name in side
                    if self._metrics.is_allowed(name)
                ]
                for side in (left, right)
            ]
            if metrics[0] or metrics[1]:
                widgets.append(
                    cloudwatch.GraphWidget(title=title, left=metrics[0], right=metrics[1], width=12)
                )
        for index in range(0, len(widgets), 2):
            self.dashboard.add_widgets(*widgets[index : index + 2])

    def _scheduler_heartbeat_alarm(self, services: Mapping[str, ecs.FargateService]) -> None:
        """`scheduler_heartbeat_missing`, when SchedulerHeartbeat is published; else a warning."""
        if not self._metrics.is_allowed(am.SCHEDULER_HEARTBEAT):
            Annotations.of(self).add_warning_v2(
                SCHEDULER_HEARTBEAT_ALARM_OFF_WARNING_ID,
                f"metrics_allow_list: without {am.SCHEDULER_HEARTBEAT} no alarm tells you that "
                "the scheduler stopped; add it to metrics_allow_list to get "
                "the scheduler_heartbeat_missing alarm",
            )
            return
        alarm = self._metrics.metric(am.SCHEDULER_HEARTBEAT, statistic="Sum").create_alarm(
            self,
            "SchedulerHeartbeatMissing",
            alarm_description=(
                f"Airflow {self._environment_name}: no scheduler heartbeat for "
                f"{SCHEDULER_HEARTBEAT_MISSING_MINUTES} minutes; no task is scheduled"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=SCHEDULER_HEARTBEAT_MISSING_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        # Created once the scheduler service is stable, not while the environment is still
        # being built (missing data counts as a missing heartbeat).
        alarm.node.add_dependency(services[contracts.SCHEDULER])
        self.alarms["scheduler_heartbeat_missing"] = alarm

    def _service_alarms(
        self,
        services: Mapping[str, ecs.FargateService],
        *,
        published: bool,
        container_insights: bool,
        healthy: cloudwatch.IMetric,
    ) -> None:
        """`service_below_desired:<name>` for each distinct service (`watched_services`):
        `all-in-one` for mw1.micro's single service, else the component (`worker:<queue>`
        for a pool). Fires when tasks are missing for `SERVICE_BELOW_DESIRED_MINUTES`;
        missing data never fires it."""
        for key, service in watched_services(services).items():
            below, source = self._tasks_below_desired(
                key,
                service,
                published=published,
                container_insights=container_insights,
                healthy=healthy,
            )
            self.alarms[f"service_below_desired:{key}"] = below.create_alarm(
                self,
                f"ServiceBelowDesired{service.node.id}",
                alarm_description=(
                    f"Airflow {self._environment_name}: service {key} has run fewer tasks than "
                    f"desired for {SERVICE_BELOW_DESIRED_MINUTES} minutes ({source}); read its "
                    "ECS events and stopped tasks"
                ),
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=SERVICE_BELOW_DESIRED_MINUTES,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

    def _tasks_below_desired(
        self,
        key: str,
        service: ecs.FargateService,
        *,
        published: bool,
        container_insights: bool,
        healthy: cloudwatch.IMetric,
    ) -> tuple[cloudwatch.Metric | cloudwatch.MathExpression, str]:
        """The alarm's metric and what it measures: the autoscaler's TasksBelowDesired when
        it runs (every class but mw1.micro); on mw1.micro, Container Insights' desired minus
        running tasks when it is on, else 1 minus the api-server target's healthy count (its
        one task runs every component, the api-server included)."""
        if published:
            metric = cloudwatch.Metric(
                namespace=contracts.METRIC_NAMESPACE,
                metric_name=contracts.METRIC_TASKS_BELOW_DESIRED,
                dimensions_map={
                    contracts.ENVIRONMENT_DIMENSION: self._environment_name,
                    contracts.SERVICE_DIMENSION: key,
                },
                statistic="Minimum",
                period=PERIOD,
            )
            return metric, "the autoscaler's TasksBelowDesired"
        if container_insights:
            dimensions = {
                "ClusterName": service.cluster.cluster_name,
                "ServiceName": service.service_name,
            }
            running, desired = (
                cloudwatch.Metric(
                    namespace=CONTAINER_INSIGHTS_NAMESPACE,
                    metric_name=metric_name,
                    dimensions_map=dimensions,
                    statistic="Average",
                    period=PERIOD,
                )
                for metric_name in ("RunningTaskCount", "DesiredTaskCount")
            )
            expression = cloudwatch.MathExpression(
                expression="desired - running",
                using_metrics={"running": running, "desired": desired},
                period=PERIOD,
                label=f"{key}: desired minus running tasks",
            )
            return expression, "Container Insights' task counts"
        unhealthy = cloudwatch.MathExpression(
            expression="IF(healthy < 1, 1 - healthy, 0)",
            using_metrics={"healthy": healthy},
            period=PERIOD,
            label=f"{key}: its one task not healthy behind the load balancer",
        )
        return unhealthy, "its one task, measured as the api-server target's healthy count"

    def _oldest_queued_task_alarm(self, queue_name: str, queue: sqs.IQueue) -> None:
        """`oldest_queued_task_age` (`:<queue>` for a pool's): the oldest message is older than
        `OLDEST_QUEUED_TASK_AGE_SECONDS` while messages wait. SQS's age counts messages in
        flight too, and Celery (acks_late) keeps a running task's message in flight until the
        task ends, so the age alone grows with every long task: the expression counts it only
        in minutes the queue never emptied."""
        waiting = cloudwatch.MathExpression(
            expression="IF(visible > 0, age, 0)",
            using_metrics={
                "age": queue.metric_approximate_age_of_oldest_message(
                    period=PERIOD, statistic="Maximum"
                ),
                "visible": queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Minimum"
                ),
            },
            period=PERIOD,
            label="Age of the oldest message while messages wait (s)",
        )
        which = f"worker pool {queue_name}'s queue" if queue_name else "the Celery queue"
        self.alarms[
            f"oldest_queued_task_age:{queue_name}" if queue_name else "oldest_queued_task_age"
        ] = waiting.create_alarm(
            self,
            f"OldestQueuedTaskAge-{queue_name}" if queue_name else "OldestQueuedTaskAge",
            alarm_description=(
                f"Airflow {self._environment_name}: tasks have waited in {which} and its "
                f"oldest message is over {OLDEST_QUEUED_TASK_AGE_SECONDS} s old for "
                f"{OLDEST_QUEUED_TASK_MINUTES} minutes; are its workers starting?"
            ),
            threshold=OLDEST_QUEUED_TASK_AGE_SECONDS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=OLDEST_QUEUED_TASK_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _dag_import_errors_alarm(self) -> None:
        """`dag_import_errors`: a DAG file the sync found a syntax error in during the last 5
        minutes, or import errors the dag-processor reported all through them."""
        using: dict[str, cloudwatch.IMetric] = {
            "syntax": environment_metric(
                contracts.METRIC_DAG_SYNTAX_ERRORS, self._environment_name, "Sum"
            ).with_(period=IMPORT_ERRORS_PERIOD)
        }
        if self._metrics.is_allowed(am.IMPORT_ERRORS):
            using["imports"] = self._metrics.metric(
                am.IMPORT_ERRORS, statistic="Minimum", period=IMPORT_ERRORS_PERIOD
            )
        errors = cloudwatch.MathExpression(
            expression="MAX([" + ", ".join(f"FILL({m}, 0)" for m in sorted(using)) + "])",
            using_metrics=using,
            period=IMPORT_ERRORS_PERIOD,
            label="DAG files with syntax or import errors",
        )
        self.alarms["dag_import_errors"] = errors.create_alarm(
            self,
            "DagImportErrors",
            alarm_description=(
                f"Airflow {self._environment_name}: DAG files fail to load (a syntax error "
                "found by the DAG sync, or Airflow's import errors); read the DAG sync's log "
                "and the dag-processor's import errors in the UI"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _task_failure_rate_alarm(self, rate: float) -> None:
        """`task_failure_rate`: failed / finished tasks over 15 minutes above `rate`, once
        `TASK_FAILURE_RATE_MIN_FINISHED` tasks finished."""
        failures, successes = (
            self._metrics.metric(name, statistic="Sum", period=TASK_FAILURE_RATE_PERIOD)
            for name in (am.TASK_FAILURES, am.TASK_SUCCESSES)
        )
        finished = "(FILL(f, 0) + FILL(s, 0))"
        failure_rate = cloudwatch.MathExpression(
            expression=(
                f"IF({finished} >= {TASK_FAILURE_RATE_MIN_FINISHED}, FILL(f, 0) / {finished}, 0)"
            ),
            using_metrics={"f": failures, "s": successes},
            period=TASK_FAILURE_RATE_PERIOD,
            label="Failed share of finished tasks",
        )
        self.alarms["task_failure_rate"] = failure_rate.create_alarm(
            self,
            "TaskFailureRate",
            alarm_description=(
                f"Airflow {self._environment_name}: more than {rate * 100:g} % of the tasks that "
                "finished in 15 minutes failed"
            ),
            threshold=rate,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _function_errors(
        self, construct_id: str, function: lambda_.IFunction, description: str
    ) -> cloudwatch.Alarm:
        return function.metric_errors(period=Duration.minutes(5), statistic="Sum").create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
