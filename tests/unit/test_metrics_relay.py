"""The metrics relay (runtime/metrics_relay): its pure core, CloudWatch through moto, the
serving loop, and the relay as the container runs it (a process, its signals)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from openmwaa.runtime import config, metric_names, metrics_relay
from openmwaa.runtime.metric_names import RULES
from openmwaa.runtime.metrics_relay import Publisher, Sample, Window, parse_line
from tests.conftest import REPO_ROOT

REGION = "eu-west-1"
NAMESPACE = "AmazonMWAA"
EVERY = tuple(sorted(metric_names.METRIC_NAMES))
T0 = 1_800_000_000.0
"""A minute boundary (a multiple of 60)."""
TICK = 0.05
"""The serving loop's clock check in tests."""


def window(names: tuple[str, ...] = EVERY, **kwargs: Any) -> Window:
    return Window(metrics_relay.allowed_rules(names), **kwargs)


def datums_of(w: Window, environment: str = "env1") -> list[dict[str, Any]]:
    datums, _, _ = w.close(environment, T0)
    return datums


def by_key(datums: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """Datums by (name, dimensions without Environment)."""
    return {
        (d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"][1:])): d
        for d in datums
    }


# -- parsing --------------------------------------------------------------------------------


def test_parse_counter_gauge_and_timer() -> None:
    assert parse_line("airflow.scheduler_heartbeat:1|c") == Sample(
        "scheduler_heartbeat", 1, "counter"
    )
    assert parse_line("airflow.dagbag_size:12|g") == Sample("dagbag_size", 12, "gauge")
    assert parse_line("airflow.task.duration:1234.5|ms") == Sample("task.duration", 1234.5, "timer")


def test_parse_influx_tags_in_the_name() -> None:
    sample = parse_line("airflow.ti_failures,dag_id=d.x,task_id=grp.t:1|c")

    assert sample is not None
    assert sample.name == "ti_failures"
    assert dict(sample.tags) == {"dag_id": "d.x", "task_id": "grp.t"}


def test_parse_sample_rate_and_dogstatsd_tags() -> None:
    sample = parse_line("airflow.ti_successes:1|c|@0.25|#dag_id:d,task_id:t")

    assert sample is not None
    assert sample.rate == 0.25
    assert dict(sample.tags) == {"dag_id": "d", "task_id": "t"}


def test_parse_signed_gauge_is_a_change() -> None:
    sample = parse_line("airflow.executor.open_slots:-2|g")

    assert sample is not None and sample.delta and sample.value == -2
    assert not parse_line("airflow.executor.open_slots:2|g").delta  # type: ignore[union-attr]


def test_lines_without_the_prefix_are_not_airflows() -> None:
    assert parse_line("myapp.requests:1|c") is None
    assert parse_line("airflowx.requests:1|c") is None


@pytest.mark.parametrize(
    "line",
    [
        "airflow.scheduler_heartbeat",
        "airflow.scheduler_heartbeat:1",
        "airflow.scheduler_heartbeat:x|c",
        "airflow.scheduler_heartbeat:1|s",
        "airflow.scheduler_heartbeat:nan|c",
        "airflow.scheduler_heartbeat:1|c|@0",
        "airflow.scheduler_heartbeat:1|c|@2",
        "airflow.ti_failures,dag_id:1|c",
        "airflow.ti_failures,=d:1|c",
    ],
)
def test_malformed_lines_raise(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def test_datagram_lines_are_parsed_and_malformed_ones_counted() -> None:
    data = b"airflow.scheduler_heartbeat:1|c\n\nbroken\nairflow.dagbag_size:3|g\n\xff:1|c\n"

    samples, bad = metrics_relay.parse_datagram(data)

    assert [s.name for s in samples] == ["scheduler_heartbeat", "dagbag_size"]
    assert bad == 1


# -- the window -----------------------------------------------------------------------------


def _line(rule: metric_names.MetricRule) -> str:
    kind = {"counter": "c", "gauge": "g", "timer": "ms"}[rule.kind]
    return f"airflow.{rule.airflow},dag_id=dag1,task_id=task1,hostname=h:5|{kind}"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.name}:{rule.airflow}")
def test_every_rule_maps_to_its_mwaa_metric(rule: metric_names.MetricRule) -> None:
    w = window((rule.name,))
    w.add_datagram(_line(rule).encode())

    (datum,) = datums_of(w)

    assert datum["MetricName"] == rule.name
    assert datum["Unit"] == rule.unit
    dimensions = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
    assert tuple(dimensions) == metric_names.dimension_names(rule)
    expected = {"Environment": "env1", **metric_names.fixed_dimensions(rule)}
    if rule.per_dag:
        expected["DAG"] = "dag1"
    if rule.per_task:
        expected["Task"] = "task1"
    assert dimensions == expected
    assert datum["StatisticValues"] == {"SampleCount": 1, "Sum": 5, "Minimum": 5, "Maximum": 5}
    assert datum["Timestamp"] == datetime.fromtimestamp(T0, UTC)


def test_counters_sum_and_respect_the_sample_rate() -> None:
    w = window()
    w.add_datagram(b"airflow.scheduler_heartbeat:1|c")
    w.add_datagram(b"airflow.scheduler_heartbeat:1|c|@0.5")
    w.add_datagram(b"airflow.scheduler_heartbeat:2|c")

    (datum,) = datums_of(w)

    assert datum["StatisticValues"] == {"SampleCount": 4, "Sum": 5, "Minimum": 1, "Maximum": 2}


def test_gauges_keep_min_max_and_apply_changes_across_windows() -> None:
    w = window()
    w.add_datagram(b"airflow.executor.open_slots,status=open:16|g")
    w.add_datagram(b"airflow.executor.open_slots,status=open:10|g")
    assert datums_of(w)[0]["StatisticValues"] == {
        "SampleCount": 2,
        "Sum": 26,
        "Minimum": 10,
        "Maximum": 16,
    }

    w.add_datagram(b"airflow.executor.open_slots:-4|g")

    assert datums_of(w)[0]["StatisticValues"]["Maximum"] == 6


def test_timers_and_per_dag_series() -> None:
    w = window()
    for dag, ms in (("a", 100), ("a", 300), ("b", 50)):
        line = f"airflow.dagrun.duration.success,dag_id={dag},run_type=manual:{ms}|ms"
        w.add_datagram(line.encode())

    datums = by_key(datums_of(w))

    a = datums[("DAGDurationSuccess", (("DAG", "a"),))]
    assert a["StatisticValues"] == {"SampleCount": 2, "Sum": 400, "Minimum": 100, "Maximum": 300}
    assert a["Unit"] == "Milliseconds"
    assert ("DAGDurationSuccess", (("DAG", "b"),)) in datums


def test_task_totals_are_all_dags_and_tasks_as_on_mwaa() -> None:
    w = window()
    w.add_datagram(b"airflow.ti_failures,dag_id=a,task_id=t:1|c")
    w.add_datagram(b"airflow.ti_failures,dag_id=b,task_id=u:1|c")

    (datum,) = datums_of(w)

    assert datum["Dimensions"][1:] == [
        {"Name": "DAG", "Value": "All"},
        {"Name": "Task", "Value": "All"},
    ]
    assert datum["StatisticValues"]["Sum"] == 2


def test_unallowed_unknown_and_legacy_names_are_dropped_silently() -> None:
    w = window(("SchedulerHeartbeat",))
    for line in (
        b"airflow.dagbag_size:3|g",
        b"airflow.no_such_metric:1|c",
        b"airflow.executor.open_slots.CeleryExecutor:3|g",
        b"airflow.dagrun.duration.success.dag1:3|ms",
        b"custom.scheduler_heartbeat:1|c",
    ):
        w.add_datagram(line)

    datums, malformed, dropped = w.close("env1", T0)

    assert (datums, malformed, dropped) == ([], 0, 0)


def test_per_dag_samples_without_their_tags_are_dropped() -> None:
    w = window()
    w.add_datagram(b"airflow.task.duration,dag_id=d:10|ms")
    w.add_datagram(b"airflow.dagrun.duration.success:10|ms")

    assert datums_of(w) == []


def test_series_beyond_the_cap_are_dropped_and_counted() -> None:
    w = window(max_series=3)
    for n in range(5):
        w.add_datagram(f"airflow.dagrun.duration.failed,dag_id=d{n}:1|ms".encode())
    w.add_datagram(b"airflow.dagrun.duration.failed,dag_id=d0:1|ms")

    datums, _, dropped = w.close("env1", T0)

    assert len(datums) == 3
    assert dropped == 2


def test_repeated_lines_count_as_the_first_one_did() -> None:
    lines = [
        b"airflow.ti_failures,dag_id=a,task_id=t:1|c",
        b"airflow.ti_failures,dag_id=a,task_id=t:2|c|@0.5",
        b"airflow.ti_failures,dag_id=a,task_id=t:x|c",
        b"airflow.executor.open_slots:10|g",
        b"airflow.executor.open_slots:-3|g",
        b"airflow.dagbag_size:4|g|#host:a",
        b"airflow.dagbag_size:6|g|#host:b",
    ]
    parsed, cached = window(), window()
    for line in lines:
        for sample in metrics_relay.parse_datagram(line)[0]:
            parsed.add(sample)
        cached.add_datagram(line)

    datums, malformed, _ = cached.close("env1", T0)

    assert datums == datums_of(parsed)
    assert malformed == 1
    failures = by_key(datums)[("TaskInstanceFailures", (("DAG", "All"), ("Task", "All")))]
    assert failures["StatisticValues"]["SampleCount"] == 3
    assert failures["StatisticValues"]["Sum"] == 5


def test_close_reports_malformed_lines_and_starts_anew() -> None:
    w = window()
    w.add_datagram(b"nonsense\nairflow.scheduler_heartbeat:1|c")

    datums, malformed, _ = w.close("env1", T0)
    again = w.close("env1", T0 + 60)

    assert (len(datums), malformed) == (1, 1)
    assert again == ([], 0, 0)


# -- publishing -----------------------------------------------------------------------------


class FakeClient:
    """Records PutMetricData calls; fails the first ``failures`` with ``code``."""

    def __init__(self, failures: int = 0, code: str = "Throttling", status: int = 400) -> None:
        self.failures, self.code, self.status = failures, code, status
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.failures:
            self.failures -= 1
            error = {"Code": self.code, "Message": "no"}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": self.status}},
                "PutMetricData",
            )


def _datums(n: int) -> list[dict[str, Any]]:
    """``n`` datums, one per DAG."""
    w = window(max_series=n)
    for i in range(n):
        w.add(Sample("dagrun.duration.success", 1.0, "timer", tags=(("dag_id", f"d{i}"),)))
    return datums_of(w)


def test_publisher_sends_at_most_1000_datums_per_call() -> None:
    client = FakeClient()
    publisher = Publisher(client, NAMESPACE, sleep=lambda _s: None)

    assert publisher.publish(_datums(2500))

    assert [len(c["MetricData"]) for c in client.calls] == [1000, 1000, 500]
    assert {c["Namespace"] for c in client.calls} == {NAMESPACE}


def test_publisher_retries_with_backoff_within_a_flush() -> None:
    client, slept = FakeClient(failures=2), []
    publisher = Publisher(client, NAMESPACE, sleep=slept.append)

    assert publisher.publish(_datums(3))

    assert len(client.calls) == 3
    assert slept == [1.0, 2.0]


def test_publisher_keeps_a_throttled_window_for_the_next_flush_and_at_most_two(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FakeClient(failures=1000)
    publisher = Publisher(client, NAMESPACE, sleep=lambda _s: None)

    assert not publisher.publish(_datums(1))
    assert not publisher.publish(_datums(2))
    assert not publisher.publish(_datums(3))
    assert [len(w) for w in publisher.pending] == [2, 3]
    assert "dropped 1 unsent data points of 1 older minutes" in caplog.text
    assert "keeping 3 data points for the next minute" in caplog.text
    client.failures = 0

    assert publisher.publish([])

    assert publisher.pending == []
    assert publisher.sent == 5


def test_publisher_drops_what_cloudwatch_refuses(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient(failures=1, code="InvalidParameterValue")
    publisher = Publisher(client, NAMESPACE, sleep=lambda _s: None)

    assert publisher.publish(_datums(2))

    assert len(client.calls) == 1
    assert "CloudWatch refused 2 data points, dropped" in caplog.text


def test_network_errors_are_retried() -> None:
    class Flaky:
        calls = 0

        def put_metric_data(self, **_kwargs: Any) -> None:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ConnectionError("reset")

    assert Publisher(Flaky(), NAMESPACE, sleep=lambda _s: None).publish(_datums(1))
    assert Flaky.calls == 2


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def _statistics(client: Any, name: str, dimensions: dict[str, str]) -> dict[str, Any]:
    response = client.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=datetime.fromtimestamp(T0, UTC) - timedelta(minutes=5),
        EndTime=datetime.fromtimestamp(T0, UTC) + timedelta(minutes=5),
        Period=60,
        Statistics=["Sum", "SampleCount", "Maximum"],
    )
    return {p["Timestamp"].timestamp(): p for p in response["Datapoints"]}


def test_published_metrics_reach_cloudwatch_with_mwaa_dimensions(cloudwatch: Any) -> None:
    w = window()
    w.add_datagram(b"airflow.scheduler_heartbeat:1|c\n" * 12)
    w.add_datagram(b"airflow.ti_successes,dag_id=a,task_id=t:1|c")
    w.add_datagram(b"airflow.task.duration,dag_id=a,task_id=t:250|ms")

    assert Publisher(cloudwatch, NAMESPACE).publish(datums_of(w, "prod"))

    listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    dimensions = {m["MetricName"]: {d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed}
    assert dimensions == {
        "SchedulerHeartbeat": {"Environment": "prod", "Function": "Scheduler"},
        "TaskInstanceSuccesses": {"Environment": "prod", "DAG": "All", "Task": "All"},
        "TaskInstanceDuration": {"Environment": "prod", "DAG": "a", "Task": "t"},
    }
    heartbeat = _statistics(
        cloudwatch, "SchedulerHeartbeat", {"Environment": "prod", "Function": "Scheduler"}
    )
    assert heartbeat[T0]["Sum"] == 12
    assert heartbeat[T0]["SampleCount"] == 12


def test_a_throttled_window_reaches_cloudwatch_at_the_next_flush(cloudwatch: Any) -> None:
    class Throttled:
        """moto's CloudWatch, throttling the first flush's three attempts."""

        failures = 3

        def put_metric_data(self, **kwargs: Any) -> Any:
            if Throttled.failures:
                Throttled.failures -= 1
                FakeClient(failures=1).put_metric_data()
            return cloudwatch.put_metric_data(**kwargs)

    publisher = Publisher(Throttled(), NAMESPACE, sleep=lambda _s: None)
    first, second = window(), window()
    first.add_datagram(b"airflow.dag_processing.import_errors:2|g")
    second.add_datagram(b"airflow.dag_processing.import_errors:1|g")

    assert not publisher.publish(first.close("prod", T0)[0])
    assert publisher.publish(second.close("prod", T0 + 60)[0])

    points = _statistics(
        cloudwatch, "ImportErrors", {"Environment": "prod", "Function": "DAG Processing"}
    )
    assert {t: p["Maximum"] for t, p in points.items()} == {T0: 2, T0 + 60: 1}


# -- the serving loop -----------------------------------------------------------------------


def _settings(port: int, metrics: tuple[str, ...] = EVERY) -> config.MetricsConfig:
    return config.MetricsConfig(NAMESPACE, "prod", metrics, port, True)


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _send(port: int, *lines: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for line in lines:
            out.sendto(line.encode(), ("127.0.0.1", port))


def _wait(condition: Any, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_serve_publishes_each_minute_stamped_with_its_minute(udp: socket.socket) -> None:
    now = [T0 + 30.5]
    client, flags = FakeClient(), {"alive": True}
    publisher = Publisher(client, NAMESPACE, sleep=lambda _s: None)
    thread = threading.Thread(
        target=metrics_relay.serve,
        args=(_settings(udp.getsockname()[1]), udp, publisher),
        kwargs={
            "parent": 1,
            "clock": lambda: now[0],
            "parent_alive": lambda _p: flags["alive"],
            "tick": TICK,
        },
    )
    thread.start()
    # a datagram sent is in the socket's buffer, which each flush reads first
    _send(udp.getsockname()[1], "airflow.scheduler_heartbeat:1|c")
    now[0] = T0 + 60.01
    _wait(lambda: client.calls)
    _send(udp.getsockname()[1], "airflow.scheduler_heartbeat:1|c")
    flags["alive"] = False
    thread.join(10)

    assert not thread.is_alive()
    stamps = [c["MetricData"][0]["Timestamp"].timestamp() for c in client.calls]
    assert stamps == [T0, T0 + 60]


def test_serve_drains_after_sigterm_until_the_parent_is_gone(udp: socket.socket) -> None:
    client, flags = FakeClient(), {"stopping": False, "alive": True}
    publisher = Publisher(client, NAMESPACE, sleep=lambda _s: None)
    port = udp.getsockname()[1]
    thread = threading.Thread(
        target=metrics_relay.serve,
        args=(_settings(port), udp, publisher),
        kwargs={
            "parent": 1,
            "stopping": lambda: flags["stopping"],
            "parent_alive": lambda _p: flags["alive"],
            "tick": TICK,
        },
    )
    thread.start()
    _send(port, "airflow.ti_successes,dag_id=a,task_id=t:1|c")
    flags["stopping"] = True
    _wait(lambda: client.calls)
    _send(port, "airflow.ti_failures,dag_id=a,task_id=t:1|c")
    time.sleep(TICK * 4)
    assert thread.is_alive()
    flags["alive"] = False
    thread.join(10)

    assert not thread.is_alive()
    names = [[d["MetricName"] for d in c["MetricData"]] for c in client.calls]
    assert names == [["TaskInstanceSuccesses"], ["TaskInstanceFailures"]]


def test_serve_logs_malformed_lines_once_per_flush(
    udp: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(FakeClient(), NAMESPACE, sleep=lambda _s: None)
    port = udp.getsockname()[1]
    _send(port, *["garbage"] * 5)

    metrics_relay.serve(_settings(port), udp, publisher, parent=1, parent_alive=lambda _p: False)

    assert caplog.text.count("malformed") == 1
    assert "skipped 5 malformed StatsD lines" in caplog.text


def test_next_minute_is_the_next_boundary() -> None:
    assert metrics_relay.next_minute(T0) == T0 + 60
    assert metrics_relay.next_minute(T0 + 59.9) == T0 + 60
    assert math.isclose(metrics_relay.next_minute(T0 - 0.1), T0)


# -- the relay as a process -----------------------------------------------------------------


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def runtime_package(tmp_path: Path) -> Path:
    """The runtime as the zip names it (``openmwaa_runtime``), on a path of its own."""
    target = tmp_path / "openmwaa_runtime"
    shutil.copytree(
        REPO_ROOT / "constructs/openmwaa/runtime", target, ignore=shutil.ignore_patterns("__py*")
    )
    return tmp_path


def test_relay_process_publishes_and_exits_on_sigusr1_after_sigterm(
    tmp_path: Path, moto_server: str
) -> None:
    port = free_udp_port()
    metrics = {"namespace": NAMESPACE, "environment": "prod", "port": port, "relay": True}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(runtime_package(tmp_path)),
        "OPENMWAA_METRICS": json.dumps({**metrics, "metrics": ["SchedulerHeartbeat"]}),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "openmwaa_runtime", "metrics-relay"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"metrics relay on 127.0.0.1:{port}: namespace {NAMESPACE}, 1 metrics" in first
        _send(port, *["airflow.scheduler_heartbeat:1|c"] * 3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.poll() is None, "the relay keeps listening while its parent lives"
        proc.send_signal(signal.SIGUSR1)
        output, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()

    assert proc.returncode == 0, output
    client = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (metric,) = client.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert metric["MetricName"] == "SchedulerHeartbeat"
    assert "stopped (1 data points in 1 calls)" in output


def test_relay_without_its_variable_exits_78(caplog: pytest.LogCaptureFixture) -> None:
    assert metrics_relay.main({}) == 78
    assert metrics_relay.main({"OPENMWAA_METRICS": "{"}) == 78
