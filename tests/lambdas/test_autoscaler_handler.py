"""The autoscaler's AWS adapter against moto: sampling loop, scaling, metrics and faults.

The loop alone, on in-memory fakes, is tested in test_autoscaler_loop.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from autoscaler import handler, loop
from autoscaler.aws_ports import AwsIO
from autoscaler.core import Policy
from autoscaler.loop import AwsCallError, InvocationSummary
from autoscaler.settings import ConfigError, Settings
from tests.lambdas.fake_clock import FakeClock

REGION = "us-east-1"
CLUSTER = "openmwaa-test"
SERVICE = "workers"
ENV_NAME = "test-env"
NAMESPACE = "OpenMWAA"
TABLE = "autoscaler-state"


# --- fixtures --------------------------------------------------------------------------


@dataclass
class Aws:
    sqs: Any
    ecs: Any
    cloudwatch: Any
    dynamodb: Any
    queue_url: str
    settings: Settings

    def io(self, **faulty: Any) -> AwsIO:
        return AwsIO(
            self.settings,
            faulty.get("sqs", self.sqs),
            faulty.get("ecs", self.ecs),
            faulty.get("cloudwatch", self.cloudwatch),
            faulty.get("dynamodb", self.dynamodb),
        )

    def desired(self) -> int:
        return int(
            self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0][
                "desiredCount"
            ]
        )

    def set_desired(self, count: int) -> None:
        self.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=count)

    def enqueue(self, count: int) -> None:
        for i in range(count):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=f"task-{i}")

    def take(self, count: int) -> None:
        """A worker receives `count` messages (acks_late: they stay in flight)."""
        got = 0
        while got < count:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, count - got),
                VisibilityTimeout=3600,
            )
            got += len(response.get("Messages", []))

    def put_history(self, start: float, end: float, queued: int, running: int) -> None:
        """Store demand samples every 5 s over [start, end), as earlier invocations did."""
        io = self.io()
        t = start
        while t < end:
            io.record_sample(t, queued + running)
            t += 5


ENV = {
    "MIN_WORKERS": "1",
    "MAX_WORKERS": "10",
    "TASKS_PER_WORKER": "5",
    "CLUSTER_NAME": CLUSTER,
    "SERVICE_NAME": SERVICE,
    "METRIC_NAMESPACE": NAMESPACE,
    "ENVIRONMENT_NAME": ENV_NAME,
    "TABLE_NAME": TABLE,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        ecs = boto3.client("ecs", region_name=REGION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        queue_url = sqs.create_queue(QueueName="openmwaa-celery")["QueueUrl"]
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(
            family="worker",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="512",
            memory="1024",
            containerDefinitions=[{"name": "worker", "image": "apache/airflow", "essential": True}],
        )
        ecs.create_service(
            cluster=CLUSTER, serviceName=SERVICE, taskDefinition="worker", desiredCount=1
        )
        settings = Settings.from_env({**ENV, "QUEUE_URL": queue_url})
        yield Aws(sqs, ecs, cloudwatch, dynamodb, queue_url, settings)
    handler._CLIENTS.clear()


@pytest.fixture
def clock() -> FakeClock:
    # Whole minute, a little in the past, so CloudWatch history lines up with real time.
    return FakeClock(float(int(time.time()) // 60 * 60 - 60))


class Faulty:
    """Wraps a boto3 client; the named operations raise ClientError `times` times."""

    def __init__(self, client: Any, code: str = "ThrottlingException", **times: int) -> None:
        self._client = client
        self._code = code
        self._remaining = dict(times)
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._remaining:
            return attribute

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self._remaining[name] != 0:
                self._remaining[name] -= 1
                raise ClientError(
                    {"Error": {"Code": self._code, "Message": "Rate exceeded"}},
                    "".join(part.title() for part in name.split("_")),
                )
            return attribute(**kwargs)

        return call


def run(aws: Aws, clock: FakeClock, io: AwsIO | None = None, **kw: Any):
    return handler.run_invocation(
        aws.settings, io or aws.io(), clock=clock.now, sleep=clock.sleep, **kw
    )


# --- sampling loop ---------------------------------------------------------------------


def test_invocation_samples_every_five_seconds_for_fifty_seconds(aws, clock):
    summary = run(aws, clock)
    assert len(summary.samples) == 10
    assert [s.at - summary.samples[0].at for s in summary.samples] == list(range(0, 50, 5))
    assert sum(clock.slept) == 45


def test_invocation_with_zero_budget_takes_one_sample(aws, clock):
    summary = run(aws, clock, budget_seconds=0)
    assert len(summary.samples) == 1
    assert clock.slept == []


def test_invocation_reacts_within_one_sample_to_tasks_entering_the_queue(aws, clock):
    clock.at(12, lambda: aws.enqueue(23))
    summary = run(aws, clock)
    assert summary.changes[0].startswith("scale_out desiredCount 1 -> 5")
    first_scaled = next(s for s in summary.samples if s.decision.changes)
    assert first_scaled.at - summary.samples[0].at == 15
    assert aws.desired() == 5


# --- scaling ---------------------------------------------------------------------------


def test_scales_out_at_once_on_queued_and_running_tasks(aws, clock):
    aws.enqueue(12)
    aws.take(4)  # 8 queued + 4 running = 12 -> 3 workers
    summary = run(aws, clock, budget_seconds=0)
    sample = summary.samples[0]
    assert (sample.observation.queued, sample.observation.running) == (8, 4)
    assert aws.desired() == 3


def test_scale_out_is_capped_at_max_workers(aws, clock):
    aws.enqueue(120)
    run(aws, clock, budget_seconds=0)
    assert aws.desired() == 10


def test_scales_in_after_the_cooldown_read_back_from_the_table(aws, clock):
    aws.set_desired(6)
    aws.put_history(clock.t - 400, clock.t - 10, queued=0, running=2)
    summary = run(aws, clock, budget_seconds=0)
    assert aws.desired() == 1
    assert summary.history_reads == 1
    assert "scale_in desiredCount 6 -> 1" in summary.changes[0]


def test_holds_while_the_cooldown_window_saw_more_demand(aws, clock):
    aws.set_desired(6)
    aws.put_history(clock.t - 400, clock.t - 130, queued=0, running=0)
    aws.put_history(clock.t - 130, clock.t - 10, queued=10, running=9)  # 19 -> 4 workers
    run(aws, clock, budget_seconds=0)
    assert aws.desired() == 4


def test_does_not_scale_in_without_published_history(aws, clock, caplog):
    aws.set_desired(6)
    with caplog.at_level(logging.DEBUG, logger="openmwaa.autoscaler"):
        summary = run(aws, clock)
    assert aws.desired() == 6
    assert "hole" in summary.samples[-1].decision.reason


def test_a_full_cooldown_of_own_samples_scales_in(aws, clock):
    aws.set_desired(6)
    changes = []
    for minute in range(7):  # one invocation a minute; each reads back the earlier ones
        summary = run(aws, clock)
        changes += [(minute, change) for change in summary.changes]
        clock.sleep(10)
    assert aws.desired() == 1
    assert len(changes) == 1
    minute, change = changes[0]
    assert minute == 5 and "6 -> 1" in change


def test_reads_history_at_most_once_per_invocation(aws, clock):
    aws.set_desired(6)
    summary = run(aws, clock)
    assert summary.history_reads == 1


def test_publishes_the_four_metrics_with_the_environment_dimension(aws, clock):
    aws.enqueue(7)
    aws.take(2)
    summary = run(aws, clock, budget_seconds=10)
    assert summary.put_metric_data_calls == 1
    metrics = aws.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "QueuedTasks",
        "RunningTasks",
        "DesiredWorkers",
        "RunningWorkers",
    }
    assert all(m["Dimensions"] == [{"Name": "Environment", "Value": ENV_NAME}] for m in metrics)
    result = aws.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": name.lower(),
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": name,
                        "Dimensions": [{"Name": "Environment", "Value": ENV_NAME}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for name in ("QueuedTasks", "RunningTasks", "DesiredWorkers")
        ],
        StartTime=datetime.fromtimestamp(clock.t - 120, UTC),
        EndTime=datetime.fromtimestamp(clock.t + 60, UTC),
    )
    maxima = {r["Id"]: max(r["Values"]) for r in result["MetricDataResults"]}
    assert maxima == {"queuedtasks": 5.0, "runningtasks": 2.0, "desiredworkers": 2.0}


def test_a_worker_pool_publishes_under_its_own_dimension(aws, clock):
    pool = replace(aws.settings, worker_pool="long-running")
    aws.enqueue(3)
    io = AwsIO(pool, aws.sqs, aws.ecs, aws.cloudwatch, aws.dynamodb)
    handler.run_invocation(pool, io, clock=clock.now, sleep=clock.sleep, budget_seconds=10)
    metrics = aws.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert metrics and all(
        m["Dimensions"]
        == [
            {"Name": "Environment", "Value": ENV_NAME},
            {"Name": "WorkerPool", "Value": "long-running"},
        ]
        for m in metrics
    ), "a pool's metrics must not mix with the environment's own workers'"


def test_settings_read_the_worker_pool() -> None:
    env = {**ENV, "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q"}
    assert Settings.from_env(env).worker_pool == ""
    assert Settings.from_env({**env, "WORKER_POOL": "gpu"}).worker_pool == "gpu"


# --- faults ----------------------------------------------------------------------------


def test_holds_and_logs_when_sqs_is_throttled(aws, clock, caplog):
    aws.set_desired(3)
    aws.enqueue(40)
    sqs = Faulty(aws.sqs, get_queue_attributes=-1)
    ecs = Faulty(aws.ecs, update_service=0)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = run(aws, clock, aws.io(sqs=sqs, ecs=ecs), budget_seconds=10)
    assert aws.desired() == 3
    assert ecs.calls.get("update_service", 0) == 0
    assert summary.samples
    assert all(
        s.decision.reason.startswith("missing input queued, running") for s in summary.samples
    )
    assert (
        "sqs:GetQueueAttributes failed (ThrottlingException: Rate exceeded); holding desiredCount"
        in caplog.text
    )


def test_recovers_on_the_next_sample_after_a_throttled_read(aws, clock):
    aws.enqueue(40)
    sqs = Faulty(aws.sqs, get_queue_attributes=1)
    summary = run(aws, clock, aws.io(sqs=sqs), budget_seconds=10)
    assert summary.samples[0].decision.desired == 1
    assert summary.samples[1].decision.desired == 8
    assert aws.desired() == 8


def test_holds_when_ecs_describe_fails(aws, clock, caplog):
    aws.enqueue(40)
    ecs = Faulty(aws.ecs, code="AccessDeniedException", describe_services=-1, update_service=0)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        run(aws, clock, aws.io(ecs=ecs), budget_seconds=0)
    assert ecs.calls.get("update_service", 0) == 0
    assert "ecs:DescribeServices failed (AccessDeniedException" in caplog.text


def test_holds_when_the_service_does_not_exist(aws, clock, caplog):
    settings = replace(aws.settings, service_name="gone")
    io = AwsIO(settings, aws.sqs, aws.ecs, aws.cloudwatch, aws.dynamodb)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = handler.run_invocation(
            settings, io, clock=clock.now, sleep=clock.sleep, budget_seconds=0
        )
    assert summary.samples[0].observation.desired_workers is None
    assert "service gone: MISSING" in caplog.text


def test_logs_a_failed_update_and_retries_next_sample(aws, clock, caplog):
    aws.enqueue(40)
    ecs = Faulty(aws.ecs, update_service=1)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = run(aws, clock, aws.io(ecs=ecs), budget_seconds=10)
    assert ecs.calls["update_service"] == 2
    assert aws.desired() == 8
    assert "ecs:UpdateService failed (ThrottlingException" in caplog.text
    assert "desiredCount stays 1 (wanted 8" in caplog.text
    assert summary.samples[0].decision.desired == 1


def test_does_not_scale_in_when_the_history_query_fails(aws, clock, caplog):
    aws.set_desired(6)
    aws.put_history(clock.t - 400, clock.t - 10, queued=0, running=0)
    dynamodb = Faulty(aws.dynamodb, query=-1)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = run(aws, clock, aws.io(dynamodb=dynamodb))
    assert aws.desired() == 6
    assert dynamodb.calls["query"] == loop.MAX_HISTORY_READS_PER_INVOCATION
    assert "dynamodb:Query failed (ThrottlingException" in caplog.text
    assert summary.samples[-1].decision.reason.startswith("demand history unavailable")


def test_still_scales_out_when_the_history_query_fails(aws, clock):
    aws.enqueue(30)
    dynamodb = Faulty(aws.dynamodb, query=-1)
    run(aws, clock, aws.io(dynamodb=dynamodb), budget_seconds=0)
    assert aws.desired() == 6


def test_a_failed_put_metric_data_is_logged_and_the_invocation_completes(aws, clock, caplog):
    aws.enqueue(12)
    cloudwatch = Faulty(aws.cloudwatch, code="InternalServiceError", put_metric_data=-1)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = run(aws, clock, aws.io(cloudwatch=cloudwatch), budget_seconds=15)
    assert aws.desired() == 3
    assert summary.put_metric_data_calls == 0
    assert "cloudwatch:PutMetricData failed (InternalServiceError" in caplog.text
    assert "3 samples not published" in caplog.text


def test_missing_values_are_not_published_as_zero(aws, clock):
    sqs = Faulty(aws.sqs, get_queue_attributes=-1)
    run(aws, clock, aws.io(sqs=sqs), budget_seconds=0)
    names = {m["MetricName"] for m in aws.cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert names == {"DesiredWorkers", "RunningWorkers"}


def test_unusable_answers_are_reported_as_failures():
    class Broken:
        def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
            return {"Attributes": {"ApproximateNumberOfMessages": "many"}}

    settings = Settings.from_env({**ENV, "QUEUE_URL": "https://q"})
    io = AwsIO(settings, Broken(), None, None, None)
    with pytest.raises(AwsCallError, match="sqs:GetQueueAttributes failed"):
        io.read_queue()


# --- settings and entry point ----------------------------------------------------------


def test_settings_defaults():
    settings = Settings.from_env({**ENV, "QUEUE_URL": "https://q"})
    assert settings.policy == Policy(
        min_workers=1,
        max_workers=10,
        tasks_per_worker=5,
        cooldown_seconds=300,
        max_gap_seconds=30,
    )
    assert (settings.sample_interval_seconds, settings.invocation_budget_seconds) == (5, 50)


def test_settings_accept_zero_min_workers():
    settings = Settings.from_env({**ENV, "QUEUE_URL": "q", "MIN_WORKERS": "0"})
    assert settings.policy.min_workers == 0


def test_settings_list_every_problem():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {
                "MIN_WORKERS": "3",
                "MAX_WORKERS": "2",
                "TASKS_PER_WORKER": "x",
                "ENVIRONMENT_NAME": "e",
            }
        )
    message = str(raised.value)
    for expected in (
        "QUEUE_URL is required",
        "CLUSTER_NAME is required",
        "SERVICE_NAME is required",
        "TASKS_PER_WORKER='x': must be an integer",
        "min_workers=3 > max_workers=2",
    ):
        assert expected in message


def test_handler_runs_one_invocation_from_the_environment(aws, monkeypatch):
    for name, value in {**ENV, "QUEUE_URL": aws.queue_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INVOCATION_BUDGET_SECONDS", "0")
    aws.enqueue(9)
    handler._CLIENTS.clear()

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    result = handler.handler({"source": "aws.events"}, Context())
    assert result["samples"] == 1
    assert result["desired_workers"] == 2
    assert aws.desired() == 2


def test_handler_shrinks_the_budget_to_the_time_left(aws, monkeypatch):
    for name, value in {**ENV, "QUEUE_URL": aws.queue_url}.items():
        monkeypatch.setenv(name, value)
    handler._CLIENTS.clear()

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 4_000  # less than the 5 s reserve: one sample, no sleeping

    result = handler.handler({}, Context())
    assert result["samples"] == 1


# --- issue 9: missing data holds, overlap cannot undo, the budget is the clock's ----------


def _minutes(aws, clock, count, *, lost=(), io=None, each=None):
    """One invocation a minute, as EventBridge runs them; minutes in `lost` never run."""
    changes = []
    for minute in range(count):
        start = clock.t
        if minute not in lost:
            if each is not None:
                each(minute)
            summary = run(aws, clock, io)
            changes += [(minute, s.at, s.decision) for s in summary.samples if s.decision.changes]
        clock.sleep(start + 60 - clock.t)
    return changes


def test_settings_max_gap_is_shorter_than_the_hole_a_lost_invocation_leaves():
    settings = Settings.from_env({**ENV, "QUEUE_URL": "https://q"})
    # Samples at 0..45 s of each minute: a lost invocation leaves 60 + 15 s unobserved.
    lost_invocation_hole = 60 + (60 - 45)
    assert settings.policy.max_gap_seconds < lost_invocation_hole


def test_a_lost_invocation_blocks_scale_in_until_a_whole_cooldown_after_it(aws, clock):
    aws.set_desired(6)
    hole_end = clock.t + 4 * 60  # minute 3 is lost: nothing observed from 3:45 to 4:00
    changes = _minutes(aws, clock, 11, lost={3})
    assert changes, "expected a scale-in once the window after the hole is observed"
    minute, at, decision = changes[0]
    assert at - hole_end >= aws.settings.policy.cooldown_seconds, (minute, decision.reason)
    assert aws.desired() == 1


class LaggingCloudWatch:
    """CloudWatch as it often answers: the newest minute of data is not readable yet."""

    def __init__(self, client: Any, clock: FakeClock) -> None:
        self._client = client
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_metric_data(self, **kwargs: Any) -> Any:
        response = self._client.get_metric_data(**kwargs)
        readable_until = self._clock.t - 60
        for result in response.get("MetricDataResults", []):
            kept = [
                (t, v)
                for t, v in zip(result["Timestamps"], result["Values"], strict=True)
                if t.timestamp() < readable_until
            ]
            result["Timestamps"] = [t for t, _ in kept]
            result["Values"] = [v for _, v in kept]
        return response


def test_a_scale_out_in_the_previous_minute_holds_while_its_minute_is_unreadable(aws, clock):
    io = aws.io(cloudwatch=LaggingCloudWatch(aws.cloudwatch, clock))

    def burst(minute: int) -> None:
        if minute == 5:  # 20 tasks arrive, run and end within the minute
            aws.enqueue(20)
            clock.at(40, lambda: aws.sqs.purge_queue(QueueUrl=aws.queue_url))

    changes = _minutes(aws, clock, 7, io=io, each=burst)
    assert [(m, d.action.value, d.desired) for m, _at, d in changes] == [(5, "scale_out", 4)]
    assert aws.desired() == 4


def test_an_overlapping_invocation_cannot_undo_a_scale_out(aws, clock):
    _minutes(aws, clock, 5)  # five quiet minutes at 1 worker: a complete, low history
    aws.enqueue(20)
    clock.at(12, lambda: aws.sqs.purge_queue(QueueUrl=aws.queue_url))
    second: dict[str, InvocationSummary] = {}
    clock.at(20, lambda: second.setdefault("summary", run(aws, clock)))
    first = run(aws, clock)
    assert first.changes and first.changes[0].startswith("scale_out desiredCount 1 -> 4")
    assert second["summary"].changes == []
    assert aws.desired() == 4


class SlowIO(AwsIO):
    """Reads the queue instantly until `slow_from`, then each read takes `seconds`."""

    def __init__(self, aws: Aws, clock: FakeClock, slow_from: float, seconds: float) -> None:
        super().__init__(aws.settings, aws.sqs, aws.ecs, aws.cloudwatch, aws.dynamodb)
        self._clock = clock
        self._slow_from = slow_from
        self._seconds = seconds
        self.ends: list[float] = []

    def read_queue(self) -> tuple[int, int]:
        if self._clock.t >= self._slow_from:
            self._clock.t += self._seconds
        self.ends.append(self._clock.t)
        return super().read_queue()


def test_never_starts_a_sample_that_cannot_finish_within_the_budget(aws, clock):
    started = clock.t
    io = SlowIO(aws, clock, slow_from=started + 40, seconds=8)
    summary = run(aws, clock, io)
    assert max(io.ends) <= started + aws.settings.invocation_budget_seconds, io.ends
    assert summary.put_metric_data_calls == 1


def test_an_invocation_that_finds_the_lease_held_exits_at_once(aws, clock):
    assert aws.io().acquire_lease("other", clock.t, clock.t + 60)
    sqs = Faulty(aws.sqs, get_queue_attributes=0)
    summary = run(aws, clock, aws.io(sqs=sqs))
    assert (summary.lease, summary.samples, clock.slept) == ("busy", [], [])
    assert sqs.calls == {}
    assert summary.as_dict()["samples"] == 0


def test_the_lease_is_released_when_the_invocation_ends(aws, clock):
    run(aws, clock)
    assert aws.io().acquire_lease("next", clock.t, clock.t + 60)


def test_an_expired_lease_is_taken_over(aws, clock):
    assert aws.io().acquire_lease("crashed", clock.t - 70, clock.t - 1)
    summary = run(aws, clock, budget_seconds=0)
    assert summary.lease == "held" and len(summary.samples) == 1


def test_without_the_table_it_scales_out_but_never_in(aws, clock, caplog):
    aws.set_desired(6)
    aws.put_history(clock.t - 400, clock.t - 10, queued=0, running=0)
    broken = Faulty(aws.dynamodb, code="ResourceNotFoundException", put_item=-1, query=-1)
    with caplog.at_level(logging.WARNING, logger="openmwaa.autoscaler"):
        summary = run(aws, clock, aws.io(dynamodb=broken), budget_seconds=10)
    assert summary.lease == "unavailable" and aws.desired() == 6
    assert "scaling out only, never in" in caplog.text
    aws.enqueue(40)
    run(aws, clock, aws.io(dynamodb=broken), budget_seconds=0)
    assert aws.desired() == 8


class ForgetfulIO(AwsIO):
    """Fails to store the samples taken in [lose_from, lose_until)."""

    def __init__(self, aws: Aws, lose_from: float, lose_until: float) -> None:
        super().__init__(aws.settings, aws.sqs, aws.ecs, aws.cloudwatch, aws.dynamodb)
        self._lose = (lose_from, lose_until)

    def record_sample(self, at: float, demand: int) -> None:
        if self._lose[0] <= at < self._lose[1]:
            raise AwsCallError("dynamodb:PutItem", "InternalServerError: boom")
        super().record_sample(at, demand)


def test_samples_that_could_not_be_stored_count_as_missing(aws, clock):
    aws.set_desired(6)
    lost_from = clock.t + 120
    io = ForgetfulIO(aws, lost_from, lost_from + 60)  # minute 2's samples never stored
    changes = _minutes(aws, clock, 9, io=io)
    minute, at, _decision = changes[0]
    assert at - (lost_from + 60) >= aws.settings.policy.cooldown_seconds - 15, minute


def test_handler_leases_until_lambda_stops_the_run(aws, monkeypatch):
    for name, value in {**ENV, "QUEUE_URL": aws.queue_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INVOCATION_BUDGET_SECONDS", "0")
    handler._CLIENTS.clear()
    leases: list[tuple[str, float]] = []
    original = AwsIO.acquire_lease

    def spy(self: AwsIO, owner: str, now: float, until: float) -> bool:
        leases.append((owner, until - now))
        return original(self, owner, now, until)

    monkeypatch.setattr(AwsIO, "acquire_lease", spy)

    class Context:
        aws_request_id = "request-1"

        def get_remaining_time_in_millis(self) -> int:
            return 59_000

    assert handler.handler({}, Context())["lease"] == "held"
    assert leases == [("request-1", 59 + loop.LEASE_MARGIN_SECONDS)]
