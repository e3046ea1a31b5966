"""The SQS queue Celery uses as its broker."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from constructs import Construct

from .nag_acknowledgements import acknowledge
from .nag_reasons import BROKER_WITHOUT_DLQ

VISIBILITY_TIMEOUT = Duration.hours(12)


class CeleryBroker(Construct):
    """One predefined SQS queue for the Celery executor, as MWAA uses.

    Encrypted (with `kms_key` when given, SQS-managed SSE otherwise), SSL-only, and with
    MWAA's 12-hour visibility timeout: Airflow acknowledges a task message only when the
    task ends, so the timeout must outlast the longest task or SQS hands the message to a
    second worker. Messages are kept 14 days. Airflow is told the queue's URL and name,
    so the workers need no sqs:ListQueues or sqs:CreateQueue.

    Each worker pool gets one more queue like it (`add_pool_queue`, `pool_queues`).
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
        self._kms_key = kms_key
        self._removal_policy = removal_policy
        self.queue = self._queue("Queue")
        self.pool_queues: dict[str, sqs.Queue] = {}
        """The queue of each worker pool, by its Celery queue name."""

    def add_pool_queue(self, celery_queue: str) -> sqs.Queue:
        """A queue for the worker pool of `celery_queue`, configured as the main one."""
        queue = self._queue(f"PoolQueue-{celery_queue}")
        self.pool_queues[celery_queue] = queue
        return queue

    @property
    def all_queues(self) -> list[sqs.Queue]:
        """The environment's queue, then each pool's."""
        return [self.queue, *self.pool_queues.values()]

    def _queue(self, construct_id: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            construct_id,
            encryption=(
                sqs.QueueEncryption.KMS if self._kms_key else sqs.QueueEncryption.SQS_MANAGED
            ),
            encryption_master_key=self._kms_key,
            data_key_reuse=Duration.hours(1) if self._kms_key else None,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=Duration.days(14),
            removal_policy=self._removal_policy,
        )
        acknowledge(queue, [BROKER_WITHOUT_DLQ])
        return queue
