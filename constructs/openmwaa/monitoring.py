"""The environment's CloudWatch dashboard and alarms."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import ALARM_TOPIC_WITHOUT_CMK
from .runtime import contracts

PERIOD = Duration.minutes(1)


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
    balancer, the database's capacity and connections, and CPU/memory per service (needs
    Container Insights, which the cluster enables).

    Alarms notify `alarm_topic` (default: a new SSL-only SNS topic, encrypted with `kms_key`
    when given, whose key policy then lets CloudWatch publish; without `kms_key` it is not
    encrypted at rest, because CloudWatch alarms cannot publish to a topic encrypted with the
    AWS managed SNS key. Its topic policy lets CloudWatch alarms of this account publish,
    which the SSL-only policy would otherwise shut out. Subscribe your e-mail, chat or pager
    to it. A topic you give must allow the same, and must not use the AWS managed SNS key):
    `queue_backlog_at_max` when tasks stay queued for 15 minutes while the workers are at
    `max_workers`; `autoscaler_errors` and `dag_sync_errors` when those functions fail, and
    `autoscaler_errors:<queue>` for each worker pool's autoscaler;
    `api_server_unhealthy` when no api-server task passes the health check for 5 minutes;
    `requirements_build_failed` when the DAG sync reports that the build of the current
    requirements.txt failed or stalled (containers then pip-install it at every start).
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
    ) -> None:
        super().__init__(scope, construct_id)
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
