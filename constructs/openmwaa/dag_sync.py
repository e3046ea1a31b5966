"""DAG sync: the source bucket on EFS within seconds, by S3 events, a schedule and at deploy."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, CfnElement, CfnResource, Duration, Stack, triggers
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n

from constructs import Construct, IConstruct

from . import defaults
from .bundled_function import FunctionPlacement, bundled_function
from .nag_acknowledgements import acknowledge
from .nag_reasons import BUCKET_NOTIFICATIONS_HANDLER, INLINE_ROLE_POLICY, dag_sync_findings
from .runtime.contracts import (
    DAGS_PREFIX,
    METRIC_NAMESPACE,
    PLUGINS_KEY,
    REQUIREMENTS_KEY,
    STARTUP_SCRIPT_KEY,
)

MOUNT_PATH = "/mnt/airflow"
MAX_PLUGIN_ENTRIES = 10_000
MAX_PLUGIN_BYTES = 1024**3
BUCKET_NOTIFICATIONS_TYPE = "Custom::S3BucketNotifications"


class DagSync(Construct):
    """Keeps EFS equal to the source bucket: dags/, plugins.zip (extracted), requirements.txt
    and startup.sh.

    A Lambda in the environment's private subnets mounts the EFS access point at
    `/mnt/airflow` and is invoked three ways:

    - S3 event notifications (ObjectCreated, ObjectRemoved) for `dags/`, `plugins.zip`,
      `requirements.txt` and `startup.sh`: a change is on EFS within seconds (MWAA polls
      every 30 s and takes minutes to pick up a new DAG);
    - an EventBridge schedule every `reconcile_interval` (default 10 minutes) that compares
      bucket and EFS and heals any difference, so a lost event costs minutes;
    - once at deploy time, before the Airflow services start, so a new environment boots
      with its DAGs.

    Changes to requirements.txt, plugins.zip or startup.sh roll every service of the
    environment's cluster (a new deployment; the function lists them, so it never depends on
    the services it must run before) so they apply in minutes without an environment rebuild. With a
    `*_s3_object_version`, only that version is applied. See docs/dag-sync.md.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        bucket: s3.IBucket,
        access_point: efs.IAccessPoint,
        cluster: ecs.ICluster,
        services: Sequence[ecs.FargateService],
        placement: FunctionPlacement,
        requirements_s3_object_version: str | None,
        plugins_s3_object_version: str | None,
        startup_script_s3_object_version: str | None,
        reconcile_interval: Duration = defaults.RECONCILE_INTERVAL,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = bundled_function(
            self,
            "Function",
            handler="dag_sync.handler.handler",
            description=f"Airflow environment {environment_name}: syncs the bucket onto EFS",
            timeout=Duration.minutes(15),
            memory_size=1024,
            placement=placement,
            filesystem=lambda_.FileSystem.from_efs_access_point(access_point, MOUNT_PATH),
            environment={
                "BUCKET_NAME": bucket.bucket_name,
                "EFS_MOUNT_PATH": MOUNT_PATH,
                "REQUIREMENTS_S3_OBJECT_VERSION": requirements_s3_object_version or "",
                "PLUGINS_S3_OBJECT_VERSION": plugins_s3_object_version or "",
                "STARTUP_SCRIPT_S3_OBJECT_VERSION": startup_script_s3_object_version or "",
                "CLUSTER_NAME": cluster.cluster_name,
                "METRIC_NAMESPACE": METRIC_NAMESPACE,
                "ENVIRONMENT_NAME": environment_name,
                "MAX_PLUGIN_ENTRIES": str(MAX_PLUGIN_ENTRIES),
                "MAX_PLUGIN_BYTES": str(MAX_PLUGIN_BYTES),
            },
        )
        bucket.grant_read(self.function)
        stack = Stack.of(self)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RollAirflowServices",
                actions=["ecs:UpdateService", "ecs:DescribeServices"],
                resources=[
                    stack.format_arn(
                        service="ecs",
                        resource="service",
                        resource_name=f"{cluster.cluster_name}/*",
                    )
                ],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="FindAirflowServices",
                actions=["ecs:ListServices"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        destination = s3n.LambdaDestination(self.function)
        filters = [
            s3.NotificationKeyFilter(prefix=DAGS_PREFIX),
            s3.NotificationKeyFilter(prefix=PLUGINS_KEY),
            s3.NotificationKeyFilter(prefix=REQUIREMENTS_KEY),
            s3.NotificationKeyFilter(prefix=STARTUP_SCRIPT_KEY),
        ]
        for event_type in (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED):
            for key_filter in filters:
                bucket.add_event_notification(event_type, destination, key_filter)
        acknowledge(self.function, dag_sync_findings(self.function, bucket, cluster))
        notifications, handler = bucket_notifications(bucket)
        acknowledge(notifications, [INLINE_ROLE_POLICY])
        acknowledge(handler, BUCKET_NOTIFICATIONS_HANDLER)

        self.schedule = events.Rule(
            self,
            "Reconcile",
            description=f"Airflow environment {environment_name}: reconcile EFS with the bucket",
            schedule=events.Schedule.rate(reconcile_interval),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        self.initial_sync = triggers.Trigger(
            self,
            "InitialSync",
            handler=self.function,
            execute_on_handler_change=True,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=Duration.minutes(14),
        )
        for service in services:
            service.node.add_dependency(self.initial_sync)
        Annotations.of(self.function).acknowledge_warning(
            "@aws-cdk/aws-lambda:addPermissionsToVersionOrAlias",
            "S3 and EventBridge invoke the unqualified function; the published version exists "
            "only so the deploy-time trigger re-runs when the code changes.",
        )


def bucket_notifications(bucket: s3.IBucket) -> tuple[IConstruct, IConstruct]:
    """What `bucket.add_event_notification` made: the construct CDK adds under the bucket
    (its custom resource and the handler's policy) and the stack's handler function.

    Both are CDK internals without a public handle, and the handler is a singleton CDK creates
    at stack level, outside this construct. So they are found through CloudFormation's own
    contract rather than CDK's private construct ids: the bucket's one resource of type
    `Custom::S3BucketNotifications`, and the function its ServiceToken (the ARN of the function
    CloudFormation invokes for it) names. Raises LookupError if either is not there, so a CDK
    change fails the compliance tests instead of silently dropping their acknowledgements.
    """
    resources = [
        child
        for child in bucket.node.find_all()
        if isinstance(child, CfnResource) and child.cfn_resource_type == BUCKET_NOTIFICATIONS_TYPE
    ]
    if len(resources) != 1:
        raise LookupError(
            f"{len(resources)} {BUCKET_NOTIFICATIONS_TYPE} resources under {bucket.node.path}, "
            "expected one"
        )
    [resource] = resources
    stack = Stack.of(bucket)
    # A generic CfnResource exposes its properties only as this (protected) mapping.
    service_token = stack.resolve(resource._cfn_properties.get("ServiceToken"))
    match service_token:
        case {"Fn::GetAtt": [str(logical_id), "Arn"]}:
            handlers = [
                child
                for child in stack.node.children
                if isinstance(child.node.default_child, CfnElement)
                and stack.get_logical_id(child.node.default_child) == logical_id
            ]
        case _:
            handlers = []
    notifications = resource.node.scope
    if notifications is None or len(handlers) != 1:
        raise LookupError(
            f"the handler of {resource.node.path} (ServiceToken {service_token}) is not one "
            f"construct of stack {stack.node.path}: CDK changed how it builds bucket notifications"
        )
    return notifications, handlers[0]
