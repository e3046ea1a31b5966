"""Thin AWS adapter of the worker autoscaler (handler string ``autoscaler.handler.handler``).

Invoked once a minute by an EventBridge schedule. Inside one invocation it samples every
SAMPLE_INTERVAL_SECONDS until INVOCATION_BUDGET_SECONDS are spent: read the broker queue
(SQS) and the worker service (ECS), decide with :mod:`autoscaler.core`, change the service's
desiredCount when the decision says so, and at the end publish every sample as CloudWatch
metrics in one PutMetricData call. The cool-down needs the demand of the last
SCALE_IN_COOLDOWN_SECONDS: it is read back from those published metrics (GetMetricData, at most
once or twice per invocation, only when a scale-in is being considered) and joined with this
invocation's own samples. No other state is kept anywhere.

Every AWS failure is logged with the operation and error code, and the count is held: a failed
read never lowers desiredCount, and the autoscaler never stops tasks itself.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autoscaler import core

LOG = logging.getLogger("openmwaa.autoscaler")
LOG.setLevel(logging.INFO)

METRIC_QUEUED = "QueuedTasks"
METRIC_RUNNING = "RunningTasks"
METRIC_DESIRED = "DesiredWorkers"
METRIC_RUNNING_WORKERS = "RunningWorkers"
DIMENSION = "Environment"
HISTORY_PERIOD_SECONDS = 60
MAX_HISTORY_READS_PER_INVOCATION = 2
PUT_METRIC_DATA_MAX_DATUMS = 1000
RESERVE_SECONDS = 5.0
"""Kept free at the end of an invocation for the final PutMetricData."""


class ConfigError(ValueError):
    """The function's environment variables are missing or invalid."""


class AwsCallError(Exception):
    """An AWS call failed or answered something unusable."""

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"{operation} failed ({detail})")
        self.operation = operation
        self.detail = detail


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
                max_gap_seconds=_max_gap(interval),
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
                max_gap_seconds=_max_gap(interval),
            ),
            sample_interval_seconds=interval,
            invocation_budget_seconds=budget,
            metric_namespace=namespace,
            environment_name=environment,
        )


def _max_gap(sample_interval: float) -> float:
    # Two history periods: tolerates one minute bucket that CloudWatch has not made
    # readable yet (published at the end of the previous invocation) plus the pause
    # between two invocations.
    return max(2.0 * HISTORY_PERIOD_SECONDS, 3.0 * sample_interval)


@dataclass(frozen=True)
class Sample:
    at: float
    observation: core.Observation
    decision: core.Decision


class AwsIO:
    """The AWS side: SQS, ECS and CloudWatch calls, each failure raised as AwsCallError."""

    def __init__(self, settings: Settings, sqs: Any, ecs: Any, cloudwatch: Any) -> None:
        self._s = settings
        self._sqs = sqs
        self._ecs = ecs
        self._cloudwatch = cloudwatch

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

    def read_history(self, start: float, end: float) -> list[core.LoadPoint]:
        """Peak demand per minute in [start, end] from the metrics published earlier.

        The peak of a minute is max(QueuedTasks) + max(RunningTasks): never below the true
        peak of their sum, so the cool-down errs on the side of keeping workers.
        """
        operation = "cloudwatch:GetMetricData"
        period = HISTORY_PERIOD_SECONDS
        aligned_start = math.floor(start / period) * period
        aligned_end = math.ceil(end / period) * period
        if aligned_end <= aligned_start:
            aligned_end = aligned_start + period
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": self._s.metric_namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": DIMENSION, "Value": self._s.environment_name}],
                    },
                    "Period": period,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
            for query_id, name in (("queued", METRIC_QUEUED), ("running", METRIC_RUNNING))
        ]
        values: dict[str, dict[float, float]] = {"queued": {}, "running": {}}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(aligned_start, UTC),
            "EndTime": datetime.fromtimestamp(aligned_end, UTC),
            "ScanBy": "TimestampAscending",
        }
        for _page in range(20):
            response = _call(operation, self._cloudwatch.get_metric_data, **kwargs)
            try:
                for result in response.get("MetricDataResults", []):
                    series = values.get(str(result["Id"]))
                    if series is None:
                        continue
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                        series[_epoch(stamp)] = float(value)
            except (KeyError, TypeError, ValueError) as error:
                raise AwsCallError(operation, f"unusable answer: {error!r}") from None
            token = response.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        points = []
        for stamp in sorted(values["queued"].keys() & values["running"].keys()):
            peak = values["queued"][stamp] + values["running"][stamp]
            points.append(core.LoadPoint(stamp, min(stamp + period, end), math.ceil(peak)))
        return points

    def publish(self, samples: Sequence[Sample]) -> int:
        """Put every sample's metrics, batched; returns the number of PutMetricData calls."""
        dimensions = [{"Name": DIMENSION, "Value": self._s.environment_name}]
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


def _epoch(stamp: Any) -> float:
    if isinstance(stamp, datetime):
        aware = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
        return aware.timestamp()
    return float(stamp)


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
            raise AwsCallError(operation, f"{code}: {message}") from error
        raise AwsCallError(operation, f"{type(error).__name__}: {error}") from error


@dataclass
class InvocationSummary:
    samples: list[Sample] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    put_metric_data_calls: int = 0
    get_metric_data_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        last = self.samples[-1].decision if self.samples else None
        return {
            "samples": len(self.samples),
            "changes": list(self.changes),
            "errors": list(self.errors),
            "desired_workers": last.desired if last else None,
            "last_decision": last.reason if last else None,
            "put_metric_data_calls": self.put_metric_data_calls,
            "get_metric_data_calls": self.get_metric_data_calls,
        }


def observe(io: AwsIO, summary: InvocationSummary) -> core.Observation:
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
    io: AwsIO,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    budget_seconds: float | None = None,
) -> InvocationSummary:
    """Sample, decide and act every sample interval until the budget is spent; then publish."""
    policy = settings.policy
    budget = settings.invocation_budget_seconds if budget_seconds is None else budget_seconds
    started = now()
    deadline = started + max(0.0, budget)
    summary = InvocationSummary()
    published_history: list[core.LoadPoint] | None = None
    history_reads = 0

    while True:
        at = now()
        observation = observe(io, summary)
        history: list[core.LoadPoint] | None = None
        if core.wants_scale_in(policy, observation):
            if published_history is None and history_reads < MAX_HISTORY_READS_PER_INVOCATION:
                history_reads += 1
                summary.get_metric_data_calls += 1
                try:
                    published_history = io.read_history(at - policy.cooldown_seconds, at)
                except AwsCallError as error:
                    _log_error(summary, error)
            if published_history is not None:
                history = published_history + _sample_points(summary.samples)
        decision = core.decide(policy, observation, at, history)
        if decision.changes and decision.desired is not None:
            try:
                io.set_desired_count(decision.desired)
                change = (
                    f"{decision.action.value} desiredCount {decision.current} -> "
                    f"{decision.desired}: {decision.reason}"
                )
                summary.changes.append(change)
                LOG.info("%s", change)
            except AwsCallError as error:
                summary.errors.append(str(error))
                LOG.error(
                    "%s; desiredCount stays %s (wanted %s, retrying next sample)",
                    error,
                    decision.current,
                    decision.desired,
                )
                decision = core.Decision(
                    core.Action.HOLD,
                    decision.current,
                    decision.current,
                    decision.target,
                    f"update failed: {error}",
                )
        else:
            LOG.debug("%s", decision.reason)
        summary.samples.append(Sample(at, observation, decision))

        next_at = at + settings.sample_interval_seconds
        if next_at >= deadline:
            break
        pause = next_at - now()
        if pause > 0:
            sleep(pause)

    try:
        summary.put_metric_data_calls = io.publish(summary.samples)
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.error("%s; %d samples not published", error, len(summary.samples))
    LOG.info(
        "invocation: %d samples, %d changes, %d errors, desiredCount %s (%s)",
        len(summary.samples),
        len(summary.changes),
        len(summary.errors),
        summary.samples[-1].decision.desired,
        summary.samples[-1].decision.reason,
    )
    return summary


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
    remaining = _remaining_seconds(context)
    if remaining is not None:
        budget = max(0.0, min(budget, remaining - RESERVE_SECONDS))
    io = AwsIO(settings, _client("sqs"), _client("ecs"), _client("cloudwatch"))
    return run_invocation(settings, io, budget_seconds=budget).as_dict()
