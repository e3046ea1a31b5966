"""Thin AWS adapter of the worker autoscaler (handler string ``autoscaler.handler.handler``).

Invoked once a minute by an EventBridge schedule. It first takes a lease in its DynamoDB table
(a conditional write); if another invocation holds it, it exits at once, so two invocations
never sample and act at the same time. Holding the lease, it samples every
SAMPLE_INTERVAL_SECONDS while the clock leaves time for a whole sample inside
INVOCATION_BUDGET_SECONDS: read the broker queue (SQS) and the worker service (ECS), store the
demand in the table, decide with :mod:`autoscaler.core`, change the service's desiredCount when
the decision says so. At the end it publishes every sample as CloudWatch metrics in one
PutMetricData call and releases the lease. The cool-down's demand history is read back from the
table (one strongly consistent Query, only when a scale-in is being considered), so what the
previous invocation saw is always readable; the metrics are for people, not for decisions.

Every AWS failure is logged with the operation and error code, and the count is held: a failed
read never lowers desiredCount, and the autoscaler never stops tasks itself. Without the table
(an error, not a lease held by another run) it still scales out, and never scales in.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from autoscaler import core

LOG = logging.getLogger("openmwaa.autoscaler")
LOG.setLevel(logging.INFO)

METRIC_QUEUED = "QueuedTasks"
METRIC_RUNNING = "RunningTasks"
METRIC_DESIRED = "DesiredWorkers"
METRIC_RUNNING_WORKERS = "RunningWorkers"
DIMENSION = "Environment"
POOL_DIMENSION = "WorkerPool"
SCHEDULE_PERIOD_SECONDS = 60.0
"""How often EventBridge starts an invocation (the construct's schedule)."""
DELIVERY_ALLOWANCE_SECONDS = 15.0
"""How much later than its predecessor's an invocation may start and still count as on time."""
MAX_HISTORY_READS_PER_INVOCATION = 2
PUT_METRIC_DATA_MAX_DATUMS = 1000
RESERVE_SECONDS = 5.0
"""Kept free at the end of an invocation for the final PutMetricData and the lease release."""
LEASE_MARGIN_SECONDS = 5.0
"""Added to the lease beyond the moment Lambda stops the invocation (clock differences)."""
HISTORY_KEEP_SECONDS = 3600.0
"""How long a stored sample outlives its cool-down before DynamoDB's TTL may delete it."""
LEASE_KEY = "lease"
SAMPLE_KEY = "sample"


class ConfigError(ValueError):
    """The function's environment variables are missing or invalid."""


class AwsCallError(Exception):
    """An AWS call failed or answered something unusable."""

    def __init__(self, operation: str, detail: str, code: str | None = None) -> None:
        super().__init__(f"{operation} failed ({detail})")
        self.operation = operation
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class Settings:
    queue_url: str
    cluster_name: str
    service_name: str
    policy: core.Policy
    sample_interval_seconds: float
    invocation_budget_seconds: float
    metric_namespace: str
    environment_name: str
    table_name: str
    worker_pool: str = ""
    """The worker pool's Celery queue; empty for the environment's own workers."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings the construct passes; raise one ConfigError listing every problem."""
        problems: list[str] = []

        def text(name: str, default: str | None = None) -> str:
            value = env.get(name, default)
            if value is None or not value.strip():
                problems.append(f"{name} is required")
                return ""
            return value.strip()

        def number(name: str, default: str | None, cast: Callable[[str], float]) -> float:
            raw = text(name, default)
            if not raw:
                return 0.0
            try:
                value = cast(raw)
            except ValueError:
                kind = "an integer" if cast is int else "a number"
                problems.append(f"{name}={raw!r}: must be {kind}")
                return 0.0
            if not math.isfinite(value):
                problems.append(f"{name}={raw!r}: must be finite")
                return 0.0
            return value

        queue_url = text("QUEUE_URL")
        cluster = text("CLUSTER_NAME")
        service = text("SERVICE_NAME")
        min_workers = int(number("MIN_WORKERS", None, int))
        max_workers = int(number("MAX_WORKERS", None, int))
        tasks_per_worker = int(number("TASKS_PER_WORKER", None, int))
        cooldown = number("SCALE_IN_COOLDOWN_SECONDS", "300", float)
        interval = number("SAMPLE_INTERVAL_SECONDS", "5", float)
        budget = number("INVOCATION_BUDGET_SECONDS", "50", float)
        namespace = text("METRIC_NAMESPACE", "OpenMWAA")
        environment = text("ENVIRONMENT_NAME")
        table = text("TABLE_NAME")
        if interval <= 0:
            problems.append(f"SAMPLE_INTERVAL_SECONDS={interval:g}: must be > 0")
        if budget < 0:
            problems.append(f"INVOCATION_BUDGET_SECONDS={budget:g}: must be >= 0")
        problems.extend(
            core.policy_problems(
                min_workers=min_workers,
                max_workers=max_workers,
                tasks_per_worker=tasks_per_worker,
                cooldown_seconds=cooldown,
                max_gap_seconds=_max_gap(interval, budget),
            )
        )
        if problems:
            raise ConfigError("invalid autoscaler configuration: " + "; ".join(problems))
        return cls(
            queue_url=queue_url,
            cluster_name=cluster,
            service_name=service,
            policy=core.Policy(
                min_workers=min_workers,
                max_workers=max_workers,
                tasks_per_worker=tasks_per_worker,
                cooldown_seconds=cooldown,
                max_gap_seconds=_max_gap(interval, budget),
            ),
            sample_interval_seconds=interval,
            invocation_budget_seconds=budget,
            metric_namespace=namespace,
            environment_name=environment,
            table_name=table,
            worker_pool=env.get("WORKER_POOL", "").strip(),
        )


def _max_gap(sample_interval: float, budget: float) -> float:
    # The pause between two invocations plus a delivery allowance (30 s with the defaults):
    # a lost invocation (a hole of at least 75 s) always blocks scale-in.
    return core.max_gap_for(
        sample_interval, budget, SCHEDULE_PERIOD_SECONDS, DELIVERY_ALLOWANCE_SECONDS
    )


@dataclass(frozen=True)
class Sample:
    at: float
    observation: core.Observation
    decision: core.Decision


class InvocationIO(core.DemandStore, Protocol):
    """Everything an invocation reads and changes (the port :func:`run_invocation` drives)."""

    def read_queue(self) -> tuple[int, int]: ...

    def read_service(self) -> tuple[int, int]: ...

    def set_desired_count(self, count: int) -> None: ...

    def publish(self, samples: Sequence[Sample]) -> int: ...


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

    def publish(self, samples: Sequence[Sample]) -> int:
        """Put every sample's metrics, batched; returns the number of PutMetricData calls."""
        dimensions = [{"Name": DIMENSION, "Value": self._s.environment_name}]
        if self._s.worker_pool:
            dimensions.append({"Name": POOL_DIMENSION, "Value": self._s.worker_pool})
        datums: list[dict[str, Any]] = []
        for sample in samples:
            stamp = datetime.fromtimestamp(sample.at, UTC)
            obs = sample.observation
            for name, value in (
                (METRIC_QUEUED, obs.queued),
                (METRIC_RUNNING, obs.running),
                (METRIC_DESIRED, sample.decision.desired),
                (METRIC_RUNNING_WORKERS, obs.running_workers),
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


@dataclass
class InvocationSummary:
    samples: list[Sample] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lease: str = "held"
    """"held", "busy" (another invocation holds it: this one did nothing) or "unavailable"
    (the table failed: scale-out only)."""
    put_metric_data_calls: int = 0
    history_reads: int = 0

    def as_dict(self) -> dict[str, Any]:
        last = self.samples[-1].decision if self.samples else None
        return {
            "lease": self.lease,
            "samples": len(self.samples),
            "changes": list(self.changes),
            "errors": list(self.errors),
            "desired_workers": last.desired if last else None,
            "last_decision": last.reason if last else None,
            "put_metric_data_calls": self.put_metric_data_calls,
            "history_reads": self.history_reads,
        }


def observe(io: InvocationIO, summary: InvocationSummary) -> core.Observation:
    """Read queue and service; a failed read leaves its fields None (and is logged)."""
    queued: int | None = None
    running: int | None = None
    desired: int | None = None
    running_workers: int | None = None
    try:
        queued, running = io.read_queue()
    except AwsCallError as error:
        _log_error(summary, error)
    try:
        desired, running_workers = io.read_service()
    except AwsCallError as error:
        _log_error(summary, error)
    return core.Observation(queued, running, desired, running_workers)


def _log_error(summary: InvocationSummary, error: AwsCallError) -> None:
    summary.errors.append(str(error))
    LOG.warning("%s; holding desiredCount (never scaling in on missing data)", error)


def run_invocation(
    settings: Settings,
    io: InvocationIO,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    budget_seconds: float | None = None,
    lease_seconds: float | None = None,
    owner: str | None = None,
) -> InvocationSummary:
    """Take the lease, then sample, decide and act every sample interval; then publish.

    ``clock`` and ``sleep`` drive time (a simulator passes a virtual clock). A sample starts
    only if the clock leaves room for it, as long as the slowest sample so far, before
    ``budget_seconds`` (default: the settings') are spent. The lease lasts ``lease_seconds``
    (default: the budget plus the publishing reserve plus a margin; the handler passes the
    time Lambda gives the invocation plus the margin, so it outlives any call still in flight).
    """
    budget = settings.invocation_budget_seconds if budget_seconds is None else budget_seconds
    budget = max(0.0, budget)
    started = clock()
    deadline = started + budget
    summary = InvocationSummary()
    owner = owner or uuid.uuid4().hex
    if lease_seconds is None:
        lease_seconds = budget + RESERVE_SECONDS + LEASE_MARGIN_SECONDS
    try:
        acquired = io.acquire_lease(owner, started, started + lease_seconds)
    except AwsCallError as error:
        summary.errors.append(str(error))
        summary.lease = "unavailable"
        LOG.error("%s; scaling out only, never in, in this invocation", error)
    else:
        if not acquired:
            summary.lease = "busy"
            LOG.info("another invocation holds the lease: exiting without sampling")
            return summary
    try:
        _sample_until(settings, io, summary, clock, sleep, started, deadline)
    finally:
        if summary.lease == "held":
            try:
                io.release_lease(owner)
            except AwsCallError as error:
                summary.errors.append(str(error))
                LOG.warning("%s; the lease expires by itself", error)
    last = summary.samples[-1].decision if summary.samples else None
    LOG.info(
        "invocation: %d samples, %d changes, %d errors, desiredCount %s (%s)",
        len(summary.samples),
        len(summary.changes),
        len(summary.errors),
        last.desired if last else None,
        last.reason if last else "no sample",
    )
    return summary


def _sample_until(
    settings: Settings,
    io: InvocationIO,
    summary: InvocationSummary,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    started: float,
    deadline: float,
) -> None:
    policy = settings.policy
    use_store = summary.lease == "held"
    stored: list[core.LoadPoint] | None = None
    slowest = 0.0
    at = started
    while True:
        observation = observe(io, summary)
        demand = observation.demand
        if use_store and demand is not None:
            try:
                io.record_sample(at, demand)  # before acting: the next run sees this peak
            except AwsCallError as error:
                _log_error(summary, error)
        history: list[core.LoadPoint] | None = None
        if use_store and core.wants_scale_in(policy, observation):
            if stored is None and summary.history_reads < MAX_HISTORY_READS_PER_INVOCATION:
                summary.history_reads += 1
                try:
                    stored = io.read_history(
                        at - policy.cooldown_seconds - policy.max_gap_seconds, at
                    )
                except AwsCallError as error:
                    _log_error(summary, error)
            if stored is not None:
                history = stored + _sample_points(summary.samples)
        decision = _act(io, summary, core.decide(policy, observation, at, history))
        summary.samples.append(Sample(at, observation, decision))

        now = clock()
        slowest = max(slowest, now - at)
        next_at = max(at + settings.sample_interval_seconds, now)
        if next_at + slowest >= deadline:
            break  # a sample started then could not finish inside the budget
        if next_at > now:
            sleep(next_at - now)
        at = clock()

    try:
        summary.put_metric_data_calls = io.publish(summary.samples)
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.error("%s; %d samples not published", error, len(summary.samples))


def _act(io: InvocationIO, summary: InvocationSummary, decision: core.Decision) -> core.Decision:
    if not (decision.changes and decision.desired is not None):
        LOG.debug("%s", decision.reason)
        return decision
    try:
        io.set_desired_count(decision.desired)
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.error(
            "%s; desiredCount stays %s (wanted %s, retrying next sample)",
            error,
            decision.current,
            decision.desired,
        )
        return core.Decision(
            core.Action.HOLD,
            decision.current,
            decision.current,
            decision.target,
            f"update failed: {error}",
        )
    change = (
        f"{decision.action.value} desiredCount {decision.current} -> "
        f"{decision.desired}: {decision.reason}"
    )
    summary.changes.append(change)
    LOG.info("%s", change)
    return decision


def _sample_points(samples: Sequence[Sample]) -> list[core.LoadPoint]:
    points = []
    for sample in samples:
        demand = sample.observation.demand
        if demand is not None:
            points.append(core.LoadPoint(sample.at, sample.at, demand))
    return points


_CLIENTS: dict[str, Any] = {}


def _client(name: str) -> Any:
    """A boto3 client, created on first use and reused across warm invocations."""
    if name not in _CLIENTS:
        import boto3
        from botocore.config import Config

        _CLIENTS[name] = boto3.client(
            name,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
        )
    return _CLIENTS[name]


def _remaining_seconds(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return float(remaining()) / 1000.0


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (EventBridge schedule, once a minute; the event is not used)."""
    settings = Settings.from_env(os.environ)
    budget = settings.invocation_budget_seconds
    lease: float | None = None
    remaining = _remaining_seconds(context)
    if remaining is not None:
        budget = max(0.0, min(budget, remaining - RESERVE_SECONDS))
        lease = remaining + LEASE_MARGIN_SECONDS  # Lambda stops this run before the lease ends
    io = AwsIO(settings, _client("sqs"), _client("ecs"), _client("cloudwatch"), _client("dynamodb"))
    owner = getattr(context, "aws_request_id", None)
    return run_invocation(
        settings, io, budget_seconds=budget, lease_seconds=lease, owner=owner
    ).as_dict()
