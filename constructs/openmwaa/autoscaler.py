"""The worker autoscaler: a Lambda that sets the Celery worker count from queued + running tasks."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from .bundled_function import FunctionPlacement, bundled_function
from .execution_role import METRIC_NAMESPACE

DEFAULT_SCALE_IN_COOLDOWN = Duration.minutes(5)
SAMPLE_INTERVAL_SECONDS = 5
INVOCATION_BUDGET_SECONDS = 50


class WorkerAutoscaler(Construct):
    """Scales the Celery worker service on queued + running tasks, down to zero if allowed.

    Invoked once a minute by EventBridge; inside each invocation it samples the broker
    queue every 5 s for 50 s, so a queued task is acted on within seconds, not minutes.
    desired = ceil((queued + running) / tasks per worker), clamped to [min_workers,
    max_workers]; scale-out at once, scale-in only after `scale_in_cooldown` of lower
    demand, and never on missing data. It only lowers the service's desired count: busy
    workers hold ECS task scale-in protection, so ECS stops only idle ones. Publishes
    QueuedTasks, RunningTasks, DesiredWorkers and RunningWorkers under the `OpenMWAA`
    namespace with the dimension Environment. A run that fails or waits is dropped, never
    retried (the next one starts a minute later), so runs do not pile up; no reserved
    concurrency is taken, so the stack deploys on accounts with the minimum quota.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        queue: sqs.IQueue,
        cluster: ecs.ICluster,
        worker_service: ecs.FargateService,
        worker_task_role: iam.IRole,
        min_workers: int,
        max_workers: int,
        tasks_per_worker: int,
        placement: FunctionPlacement,
        scale_in_cooldown: Duration = DEFAULT_SCALE_IN_COOLDOWN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = bundled_function(
            self,
            "Function",
            handler="autoscaler.handler.handler",
            description=f"Airflow environment {environment_name}: scales Celery workers",
            timeout=Duration.seconds(60),
            memory_size=128,
            placement=placement,
            environment={
                "QUEUE_URL": queue.queue_url,
                "CLUSTER_NAME": cluster.cluster_name,
                "SERVICE_NAME": worker_service.service_name,
                "MIN_WORKERS": str(min_workers),
                "MAX_WORKERS": str(max_workers),
                "TASKS_PER_WORKER": str(tasks_per_worker),
                "SCALE_IN_COOLDOWN_SECONDS": str(int(scale_in_cooldown.to_seconds())),
                "SAMPLE_INTERVAL_SECONDS": str(SAMPLE_INTERVAL_SECONDS),
                "INVOCATION_BUDGET_SECONDS": str(INVOCATION_BUDGET_SECONDS),
                "METRIC_NAMESPACE": METRIC_NAMESPACE,
                "ENVIRONMENT_NAME": environment_name,
            },
        )
        self.function.configure_async_invoke(max_event_age=Duration.seconds(60), retry_attempts=0)
        queue.grant(self.function, "sqs:GetQueueAttributes")
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ScaleWorkerService",
                actions=["ecs:DescribeServices", "ecs:UpdateService"],
                resources=[worker_service.service_arn],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PublishWorkerMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadDemandHistory",
                actions=["cloudwatch:GetMetricData"],
                resources=["*"],
            )
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Airflow environment {environment_name}: run the worker autoscaler",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        worker_task_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WorkerScaleInProtection",
                actions=["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                resources=[
                    Stack.of(self).format_arn(
                        service="ecs",
                        resource="task",
                        resource_name=f"{cluster.cluster_name}/*",
                    )
                ],
            )
        )
