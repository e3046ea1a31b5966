"""The IAM role Airflow runs as (MWAA's "execution role"): the ECS task role of every component."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import execution_role_findings
from .runtime.contracts import SECRETS_PREFIXES


class ExecutionRole(Construct):
    """MWAA's execution-role permissions, scoped to this environment.

    - read the source bucket (dags, plugins, requirements, startup script);
    - write and read its own log groups `airflow-<environment>-*` (task logs in the UI), and
      create them if they are missing (`logs:CreateLogGroup` on those groups only, as MWAA's
      policy grants it on `airflow-<environment>-*`);
    - `logs:DescribeLogGroups` on every log group of the account and region: Airflow's
      CloudWatch task handler (watchtower) looks its group up with it before it writes, and AWS
      authorizes the action only against `log-group:*`, never a single group (MWAA's policy
      grants it on `*`);
    - use the Celery broker queues, the environment's and each worker pool's (send, receive,
      delete, change visibility, attributes);
    - read secrets under `airflow/connections/*` and `airflow/variables/*` (the Secrets
      Manager backend, as MWAA documents it);
    - `cloudwatch:PutMetricData` for custom metrics from DAGs (the action has no resource
      scoping, so it is granted on `*`);
    - use `kms_key` for the above when given.

    `role` is exposed so you can grant more (`bucket.grant_read(env.execution_role)`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        bucket: s3.IBucket,
        queues: list[sqs.IQueue],
        log_groups: list[logs.ILogGroup],
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"Airflow environment {environment_name}: the role Airflow runs as",
        )
        bucket.grant_read(self.role)
        for queue in queues:
            queue.grant_consume_messages(self.role)
            queue.grant_send_messages(self.role)
        for group in log_groups:
            group.grant_write(self.role)
            group.grant_read(self.role)
        stack = Stack.of(self)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CreateOwnLogGroups",
                actions=["logs:CreateLogGroup"],
                resources=[group.log_group_arn for group in log_groups],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeLogGroups",
                actions=["logs:DescribeLogGroups"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SecretsManagerBackend",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[
                    stack.format_arn(
                        service="secretsmanager",
                        resource="secret",
                        resource_name=f"{prefix}/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for prefix in SECRETS_PREFIXES
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CustomMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
            )
        )
        if kms_key is not None:
            kms_key.grant_encrypt_decrypt(self.role)
        acknowledge(self.role, execution_role_findings(self.role, bucket, kms=kms_key is not None))
