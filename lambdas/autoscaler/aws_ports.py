"""The AWS side of the autoscaler: :class:`AwsIO`, the boto3 implementation of the loop's port.

SQS (the broker queue's approximate counts), ECS (the worker service, and every watched service's
counts), DynamoDB (the lease and the demand samples, see :class:`autoscaler.core.DemandStore`)
and CloudWatch (the metrics).
Every failure, and every answer it cannot use, is raised as :class:`autoscaler.loop.AwsCallError`
with the operation and the error code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import openmwaa_contracts as contracts

from autoscaler import core
from autoscaler.loop import AwsCallError, Sample
from autoscaler.settings import Settings

PUT_METRIC_DATA_MAX_DATUMS = 1000
DESCRIBE_SERVICES_MAX = 10
"""Services one DescribeServices call takes."""
HISTORY_KEEP_SECONDS = 3600.0
"""How long a stored sample outlives its cool-down before DynamoDB's TTL may delete it."""
LEASE_KEY = "lease"
SAMPLE_KEY = "sample"


class AwsIO:
    """The AWS side: SQS, ECS, DynamoDB and CloudWatch calls, each failure an AwsCallError."""

    def __init__(
        self, settings: Settings, sqs: Any, ecs: Any, cloudwatch: Any, dynamodb: Any
    ) -> None:
        self._s = settings
        self._sqs = sqs
        self._ecs = ecs
        self._cloudwatch = cloudwatch
        self._dynamodb = dynamodb

    def read_queue(self) -> tuple[int, int]:
        """(queued, running) from the broker queue's approximate counts."""
        response = _call(
            "sqs:GetQueueAttributes",
            self._sqs.get_queue_attributes,
            QueueUrl=self._s.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
        try:
            attributes = response["Attributes"]
            return (
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AwsCallError("sqs:GetQueueAttributes", f"unusable answer: {error!r}") from None

    def read_service(self) -> tuple[int, int]:
        """(desiredCount, runningCount) of the worker service."""
        operation = "ecs:DescribeServices"
        response = _call(
            operation,
            self._ecs.describe_services,
            cluster=self._s.cluster_name,
            services=[self._s.service_name],
        )
        try:
            services = [
                s
                for s in response.get("services", [])
                if s.get("serviceName") == self._s.service_name
                or str(s.get("serviceArn", "")).endswith("/" + self._s.service_name)
            ]
            if not services:
                failures = response.get("failures") or [{"reason": "not returned"}]
                reason = failures[0].get("reason", "unknown")
                raise AwsCallError(operation, f"service {self._s.service_name}: {reason}")
            service = services[0]
            status = service.get("status", "ACTIVE")
            if status != "ACTIVE":
                raise AwsCallError(operation, f"service {self._s.service_name} is {status}")
            return int(service["desiredCount"]), int(service["runningCount"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise AwsCallError(operation, f"unusable answer: {error!r}") from None

    def read_services(self) -> list[core.ServiceCount]:
        """Desired and running tasks of every watched service (``Settings.services``), in
        DescribeServices calls of up to 10. A service the answer leaves out, or that is not
        ACTIVE (being deleted), is left out: its alarm gets no data, which never fires it."""
        operation = "ecs:DescribeServices"
        names = {name: component for component, name in self._s.services}
        counts: list[core.ServiceCount] = []
        ordered = [name for _, name in self._s.services]
        for start in range(0, len(ordered), DESCRIBE_SERVICES_MAX):
            batch = ordered[start : start + DESCRIBE_SERVICES_MAX]
            response = _call(
                operation,
                self._ecs.describe_services,
                cluster=self._s.cluster_name,
                services=batch,
            )
            try:
                for service in response.get("services", []):
                    name = str(service.get("serviceName", ""))
                    if name not in names or service.get("status", "ACTIVE") != "ACTIVE":
                        continue
                    counts.append(
                        core.ServiceCount(
                            names[name], int(service["desiredCount"]), int(service["runningCount"])
                        )
                    )
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise AwsCallError(operation, f"unusable answer: {error!r}") from None
        return sorted(counts, key=lambda count: count.component)

    def set_desired_count(self, count: int) -> None:
        _call(
            "ecs:UpdateService",
            self._ecs.update_service,
            cluster=self._s.cluster_name,
            service=self._s.service_name,
            desiredCount=count,
        )

    def acquire_lease(self, owner: str, now: float, until: float) -> bool:
        """Conditional PutItem of the lease item: False when another owner holds it."""
        try:
            _call(
                "dynamodb:PutItem",
                self._dynamodb.put_item,
                TableName=self._s.table_name,
                Item={
                    "pk": {"S": LEASE_KEY},
                    "sk": {"N": "0"},
                    "holder": {"S": owner},
                    "until": {"N": _number(until)},
                    "expires": {"N": str(math.ceil(until + HISTORY_KEEP_SECONDS))},
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #until < :now OR #holder = :owner"
                ),
                ExpressionAttributeNames={"#until": "until", "#holder": "holder"},
                ExpressionAttributeValues={":now": {"N": _number(now)}, ":owner": {"S": owner}},
            )
        except AwsCallError as error:
            if error.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_lease(self, owner: str) -> None:
        """Conditional DeleteItem of the lease item, only while ``owner`` holds it."""
        try:
            _call(
                "dynamodb:DeleteItem",
                self._dynamodb.delete_item,
                TableName=self._s.table_name,
                Key={"pk": {"S": LEASE_KEY}, "sk": {"N": "0"}},
                ConditionExpression="#holder = :owner",
                ExpressionAttributeNames={"#holder": "holder"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except AwsCallError as error:
            if error.code != "ConditionalCheckFailedException":
                raise

    def record_sample(self, at: float, demand: int) -> None:
        """PutItem of one sample (1 write unit), kept by TTL for a cool-down and an hour."""
        keep = self._s.policy.cooldown_seconds + HISTORY_KEEP_SECONDS
        _call(
            "dynamodb:PutItem",
            self._dynamodb.put_item,
            TableName=self._s.table_name,
            Item={
                "pk": {"S": SAMPLE_KEY},
                "sk": {"N": _number(at)},
                "demand": {"N": str(int(demand))},
                "expires": {"N": str(math.ceil(at + keep))},
            },
        )

    def read_history(self, start: float, end: float) -> list[core.LoadPoint]:
        """Every stored sample in [start, end]: one strongly consistent Query (paged)."""
        operation = "dynamodb:Query"
        kwargs: dict[str, Any] = {
            "TableName": self._s.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
            "ExpressionAttributeValues": {
                ":pk": {"S": SAMPLE_KEY},
                ":start": {"N": _number(start)},
                ":end": {"N": _number(end)},
            },
            "ProjectionExpression": "sk, #demand",
            "ExpressionAttributeNames": {"#demand": "demand"},
            "ConsistentRead": True,
        }
        points: list[core.LoadPoint] = []
        for _page in range(20):
            response = _call(operation, self._dynamodb.query, **kwargs)
            try:
                for item in response.get("Items", []):
                    at = float(item["sk"]["N"])
                    points.append(core.LoadPoint(at, at, int(item["demand"]["N"])))
            except (KeyError, TypeError, ValueError) as error:
                raise AwsCallError(operation, f"unusable answer: {error!r}") from None
            last = response.get("LastEvaluatedKey")
            if not last:
                return points
            kwargs["ExclusiveStartKey"] = last
        raise AwsCallError(operation, "more than 20 pages of history")

    def publish(
        self, samples: Sequence[Sample], services: core.ServiceSnapshot | None = None
    ) -> int:
        """Put every sample's metrics and each service's TasksBelowDesired (dimension
        ``Service`` besides the others), batched; returns the number of PutMetricData calls."""
        dimensions = [{"Name": contracts.ENVIRONMENT_DIMENSION, "Value": self._s.environment_name}]
        if self._s.worker_pool:
            dimensions.append(
                {"Name": contracts.WORKER_POOL_DIMENSION, "Value": self._s.worker_pool}
            )
        datums: list[dict[str, Any]] = []
        for sample in samples:
            stamp = datetime.fromtimestamp(sample.at, UTC)
            obs = sample.observation
            for name, value in (
                (contracts.METRIC_QUEUED_TASKS, obs.queued),
                (contracts.METRIC_RUNNING_TASKS, obs.running),
                (contracts.METRIC_DESIRED_WORKERS, sample.decision.desired),
                (contracts.METRIC_RUNNING_WORKERS, obs.running_workers),
            ):
                if value is None:
                    continue  # never publish a made-up 0: it would read back as "no demand"
                datums.append(
                    {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": stamp,
                        "Value": float(value),
                        "Unit": "Count",
                    }
                )
        if services is not None:
            stamp = datetime.fromtimestamp(services.at, UTC)
            for component, below in sorted(services.below_desired().items()):
                datums.append(
                    {
                        "MetricName": contracts.METRIC_TASKS_BELOW_DESIRED,
                        "Dimensions": [
                            *dimensions,
                            {"Name": contracts.SERVICE_DIMENSION, "Value": component},
                        ],
                        "Timestamp": stamp,
                        "Value": float(below),
                        "Unit": "Count",
                    }
                )
        calls = 0
        for offset in range(0, len(datums), PUT_METRIC_DATA_MAX_DATUMS):
            _call(
                "cloudwatch:PutMetricData",
                self._cloudwatch.put_metric_data,
                Namespace=self._s.metric_namespace,
                MetricData=datums[offset : offset + PUT_METRIC_DATA_MAX_DATUMS],
            )
            calls += 1
        return calls


def _number(value: float) -> str:
    """A DynamoDB number: millisecond precision is plenty for sample times."""
    return f"{value:.3f}"


def _call(operation: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return function(**kwargs)
    except AwsCallError:
        raise
    except Exception as error:  # botocore ClientError, BotoCoreError, timeouts
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            details = response.get("Error", {})
            code = details.get("Code", type(error).__name__)
            message = details.get("Message", str(error))
            raise AwsCallError(operation, f"{code}: {message}", str(code)) from error
        raise AwsCallError(operation, f"{type(error).__name__}: {error}") from error
