"""The worker autoscaler: a Lambda that sets the Celery worker count from queued + running tasks."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from . import defaults
from .bundled_function import FunctionPlacement, bundled_function
from .nag_acknowledgements import acknowledge
from .nag_reasons import AUTOSCALER_FUNCTION, AUTOSCALER_STATE_TABLE, worker_task_protection
from .runtime.contracts import METRIC_NAMESPACE

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

    For a worker pool (`worker_pool`: its Celery queue), it reads the pool's queue, scales the
    pool's service, and publishes the same metrics with a second dimension, WorkerPool.

    Given `watched_services` (component -> service: the environment's own autoscaler gets every
    service of the environment, pools' included), each run also describes them (up to 10 per
    DescribeServices call, `ecs:DescribeServices` on exactly those services) and publishes
    TasksBelowDesired (desired - running tasks, never below 0) with the dimensions Environment
    and Service (the component): what the `service_below_desired` alarms read, so they need no
    Container Insights.

    Creates a small DynamoDB table (`table`: on demand, encrypted with `kms_key` when given,
    TTL on every item, destroyed with the stack) holding the demand samples of the cool-down
    and a lease that lets only one invocation run at a time (docs/autoscaling.md).
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
        scale_in_cooldown: Duration = defaults.SCALE_IN_COOLDOWN,
        kms_key: kms.IKey | None = None,
        worker_pool: str | None = None,
        watched_services: Mapping[str, ecs.FargateService] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Ephemeral state (a lease and the last minutes of samples, each with a TTL): no
        # point-in-time recovery or backup, no retention, no name, so nothing outlives the stack.
        self.table = dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.NUMBER),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if kms_key is not None
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=kms_key,
            time_to_live_attribute="expires",
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(self.table, AUTOSCALER_STATE_TABLE)
        self.function = bundled_function(
            self,
            "Function",
            handler="autoscaler.handler.handler",
            description=f"Airflow environment {environment_name}: scales Celery workers"
            + (f" of pool {worker_pool}" if worker_pool else ""),
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
                "TABLE_NAME": self.table.table_name,
                **({"WORKER_POOL": worker_pool} if worker_pool else {}),
                **(
                    {
                        "SERVICES": Stack.of(self).to_json_string(
                            {c: s.service_name for c, s in sorted(watched_services.items())}
                        )
                    }
                    if watched_services
                    else {}
                ),
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
        if watched_services:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="WatchEnvironmentServices",
                    actions=["ecs:DescribeServices"],
                    resources=[s.service_arn for _, s in sorted(watched_services.items())],
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
                sid="DemandHistoryAndLease",
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"],
                resources=[self.table.table_arn],
            )
        )
        if kms_key is not None:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="DemandHistoryEncryption",
                    actions=[
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                    ],
                    resources=[kms_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"dynamodb.{Stack.of(self).region}.amazonaws.com"
                        }
                    },
                )
            )
        acknowledge(self.function, AUTOSCALER_FUNCTION)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Airflow environment {environment_name}: run the worker autoscaler"
            + (f" of pool {worker_pool}" if worker_pool else ""),
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
        acknowledge(worker_task_role, [worker_task_protection(worker_task_role, cluster)])
