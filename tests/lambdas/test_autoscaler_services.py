"""The autoscaler's TasksBelowDesired: every watched service's desired minus running tasks,
published once a run so the `service_below_desired` alarms need no Container Insights.

Core (pure), settings, the loop on its in-memory fake, and the boto3 adapter against moto.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from autoscaler import core, loop
from autoscaler.aws_ports import DESCRIBE_SERVICES_MAX, AwsIO
from autoscaler.loop import AwsCallError
from autoscaler.settings import ConfigError, Settings
from tests.lambdas.fake_clock import FakeClock
from tests.lambdas.test_autoscaler_loop import Config, FakeCluster

REGION = "us-east-1"
CLUSTER = "openmwaa-test"
ENV_NAME = "test-env"
BASE_ENV = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    "CLUSTER_NAME": CLUSTER,
    "SERVICE_NAME": "svc-worker",
    "MIN_WORKERS": "0",
    "MAX_WORKERS": "10",
    "TASKS_PER_WORKER": "5",
    "ENVIRONMENT_NAME": ENV_NAME,
    "TABLE_NAME": "state",
}


# --- core -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "running", "below"),
    [(2, 2, 0), (2, 1, 1), (2, 0, 2), (0, 0, 0), (1, 3, 0)],
)
def test_tasks_below_desired_is_desired_minus_running_never_negative(
    desired: int, running: int, below: int
) -> None:
    """A deployment running old and new tasks side by side (running above desired) counts 0."""
    assert core.ServiceCount("scheduler", desired, running).below_desired == below


def test_a_snapshot_gives_each_components_count() -> None:
    snapshot = core.ServiceSnapshot(
        10.0, (core.ServiceCount("scheduler", 2, 1), core.ServiceCount("worker:long", 3, 3))
    )
    assert snapshot.below_desired() == {"scheduler": 1, "worker:long": 0}


# --- settings -------------------------------------------------------------------------------


def test_settings_read_the_watched_services_sorted_by_component() -> None:
    services = {"worker": "svc-worker", "api-server": "svc-api"}
    settings = Settings.from_env({**BASE_ENV, "SERVICES": json.dumps(services)})
    assert settings.services == (("api-server", "svc-api"), ("worker", "svc-worker"))


def test_settings_without_services_watch_nothing() -> None:
    assert Settings.from_env(BASE_ENV).services == ()


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"scheduler": 3}', '{"": "svc"}'])
def test_fails_when_services_is_not_an_object_of_names(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"SERVICES="):
        Settings.from_env({**BASE_ENV, "SERVICES": raw})


# --- the loop (in-memory fake) --------------------------------------------------------------


def _invoke(cluster: FakeCluster, clock: FakeClock) -> loop.InvocationSummary:
    return loop.run_invocation(
        Config(), cluster, clock=clock.now, sleep=clock.sleep, owner="run", budget_seconds=0.0
    )


def test_the_loop_reads_the_services_once_and_publishes_them_with_the_samples() -> None:
    clock = FakeClock(1_000.0)
    cluster = FakeCluster(clock, services=[core.ServiceCount("scheduler", 2, 1)])
    summary = _invoke(cluster, clock)
    assert cluster.calls.count("read_services") == 1
    assert cluster.calls.index("read_services") < cluster.calls.index("publish")
    [snapshot] = cluster.published_services
    assert snapshot is not None and snapshot.below_desired() == {"scheduler": 1}
    assert summary.as_dict()["tasks_below_desired"] == {"scheduler": 1}


def test_a_failed_service_read_still_publishes_the_samples_and_is_recorded() -> None:
    clock = FakeClock(1_000.0)
    cluster = FakeCluster(clock, services=[core.ServiceCount("scheduler", 2, 1)])
    cluster.failures["read_services"] = 1
    summary = _invoke(cluster, clock)
    assert cluster.published_services == [None]
    assert len(cluster.published) == 1 and cluster.published[0][1]
    assert any("read_services" in error for error in summary.errors)
    assert summary.as_dict()["tasks_below_desired"] is None


def test_no_watched_service_publishes_no_snapshot() -> None:
    clock = FakeClock(1_000.0)
    cluster = FakeCluster(clock)
    _invoke(cluster, clock)
    assert cluster.published_services == [None]


# --- the adapter against moto ---------------------------------------------------------------


class Recorder:
    """An ECS client that records the services of each DescribeServices call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batches: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def describe_services(self, **kwargs: Any) -> Any:
        self.batches.append(list(kwargs["services"]))
        return self._client.describe_services(**kwargs)


@pytest.fixture
def ecs() -> Iterator[Any]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION
    )
    try:
        with mock_aws():
            client = boto3.client("ecs", region_name=REGION)
            client.create_cluster(clusterName=CLUSTER)
            client.register_task_definition(
                family="airflow",
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu="512",
                memory="1024",
                containerDefinitions=[{"name": "a", "image": "apache/airflow", "essential": True}],
            )
            yield client
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _services(ecs: Any, count: int) -> dict[str, str]:
    """`count` services (component c<i> -> service svc-<i>, desired i % 3; moto runs none)."""
    watched = {}
    for index in range(count):
        name = f"svc-{index}"
        ecs.create_service(
            cluster=CLUSTER, serviceName=name, taskDefinition="airflow", desiredCount=index % 3
        )
        watched[f"c{index:02d}"] = name
    return watched


def test_the_adapter_describes_every_service_ten_at_a_time(ecs: Any) -> None:
    watched = _services(ecs, 12)
    settings = Settings.from_env({**BASE_ENV, "SERVICES": json.dumps(watched)})
    recorder = Recorder(ecs)
    counts = AwsIO(settings, None, recorder, None, None).read_services()
    assert [len(batch) for batch in recorder.batches] == [DESCRIBE_SERVICES_MAX, 2]
    assert sorted(name for batch in recorder.batches for name in batch) == sorted(watched.values())
    assert [(c.component, c.desired, c.running) for c in counts] == [
        (f"c{index:02d}", index % 3, 0) for index in range(12)
    ]


def test_the_adapter_leaves_out_a_service_ecs_does_not_return(ecs: Any) -> None:
    watched = {**_services(ecs, 2), "gone": "svc-deleted"}
    settings = Settings.from_env({**BASE_ENV, "SERVICES": json.dumps(watched)})
    counts = AwsIO(settings, None, ecs, None, None).read_services()
    assert [c.component for c in counts] == ["c00", "c01"]


def test_the_adapter_without_watched_services_makes_no_call() -> None:
    settings = Settings.from_env(BASE_ENV)
    assert AwsIO(settings, None, None, None, None).read_services() == []


class Throttled:
    """An ECS client whose DescribeServices is throttled."""

    def describe_services(self, **kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "DescribeServices",
        )


def test_the_adapter_raises_an_aws_call_error_when_describe_fails() -> None:
    settings = Settings.from_env({**BASE_ENV, "SERVICES": json.dumps({"scheduler": "svc"})})
    io = AwsIO(settings, None, Throttled(), None, None)
    with pytest.raises(AwsCallError, match=r"ecs:DescribeServices failed \(ThrottlingException"):
        io.read_services()


def test_the_adapter_publishes_tasks_below_desired_per_service() -> None:
    with mock_aws():
        cloudwatch = boto3.client(
            "cloudwatch",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        settings = Settings.from_env(BASE_ENV)
        at = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
        snapshot = core.ServiceSnapshot(
            at.timestamp(),
            (core.ServiceCount("scheduler", 2, 0), core.ServiceCount("worker:long", 1, 1)),
        )
        AwsIO(settings, None, None, cloudwatch, None).publish([], snapshot)
        metrics = cloudwatch.list_metrics(Namespace="OpenMWAA", MetricName="TasksBelowDesired")[
            "Metrics"
        ]
        assert sorted(
            tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics
        ) == [
            (("Environment", ENV_NAME), ("Service", "scheduler")),
            (("Environment", ENV_NAME), ("Service", "worker:long")),
        ]
        values = cloudwatch.get_metric_statistics(
            Namespace="OpenMWAA",
            MetricName="TasksBelowDesired",
            Dimensions=[
                {"Name": "Environment", "Value": ENV_NAME},
                {"Name": "Service", "Value": "scheduler"},
            ],
            StartTime=at - timedelta(minutes=1),
            EndTime=at + timedelta(minutes=2),
            Period=60,
            Statistics=["Minimum"],
        )["Datapoints"]
        assert [point["Minimum"] for point in values] == [2.0]
