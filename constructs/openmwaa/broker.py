"""The SQS queue Celery uses as its broker."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from constructs import Construct

VISIBILITY_TIMEOUT = Duration.hours(12)


class CeleryBroker(Construct):
    """One predefined SQS queue for the Celery executor, as MWAA uses.

    Encrypted (with `kms_key` when given, SQS-managed SSE otherwise), SSL-only, and with
    MWAA's 12-hour visibility timeout: Airflow acknowledges a task message only when the
    task ends, so the timeout must outlast the longest task or SQS hands the message to a
    second worker. Messages are kept 14 days. Airflow is told the queue's URL and name,
    so the workers need no sqs:ListQueues or sqs:CreateQueue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kms_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS if kms_key else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=kms_key,
            data_key_reuse=Duration.hours(1) if kms_key else None,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
