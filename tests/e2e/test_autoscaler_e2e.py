"""End to end: worker scale-in protection and the autoscaler against a real Airflow.

* Busy detection: the task-protection policy (protection_policy.py), over the real
  worker's /proc subtree, says busy while an Airflow 3 task runs and idle after (when the
  pool process still carries the task's ``airflow supervisor:`` title).
* Protection on task receipt: the real worker loads the runtime's Celery config module, and
  Airflow's own Celery app, built from that module with real Celery, calls the ECS agent's
  task-protection endpoint (a local stand-in) when ``task_received`` fires.
* Autoscaler: the Lambda's sampling loop (real clock, a sample every 5 s) reads the live
  broker queue that Airflow's scheduler fills, sets the desired count of a worker service on
  moto's ECS, and publishes QueuedTasks/RunningTasks to moto's CloudWatch; the reaction time
  from the first message to UpdateService is printed (``AUTOSCALER_E2E reaction=...``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoscaler import handler
from autoscaler.aws_ports import AwsIO
from autoscaler.loop import InvocationSummary
from autoscaler.settings import Settings
from openmwaa import runtime_bundle
from openmwaa.runtime import bootstrap, config
from openmwaa.runtime import protection_policy as policy
from tests.ecs_agent_stub import FakeEcsAgent

from .autoscaler_support import QueueWatcher, process_tree
from .cfn import resources_of_type
from .conftest import AirflowUnderTest
from .localenv import Process
from .test_airflow_e2e import SLEEP, _run_path, _task_instance, _trigger, _wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

CONFIG_MODULE = "openmwaa_runtime.celery_signals.CELERY_CONFIG"
RUNS = 6
RECEIVED = re.compile(r"^(\S+?)Z \[info\s*\] Task execute_workload\[[^]]+\] received", re.M)
TASKS_PER_WORKER = 2


@pytest.fixture(scope="module")
def worker(airflow: AirflowUnderTest) -> Process:
    airflow.assert_running("worker")
    return airflow.processes["worker"]


def _busy(worker: Process) -> bool:
    return policy.is_busy(process_tree(worker.popen.pid))


def _titles(worker: Process) -> list[str]:
    return [p.cmdline[:80] for p in process_tree(worker.popen.pid)]


def test_busy_detection_follows_a_real_airflow_task(
    airflow: AirflowUnderTest, worker: Process
) -> None:
    # (the environment may be shared with other modules: let their tasks end first)
    airflow.wait_for("an idle worker", lambda: not _busy(worker), timeout=300, interval=1)
    run_id = _trigger(airflow, SLEEP)
    triggered, triggered_at = time.monotonic(), time.time()
    samples: list[tuple[float, str, bool]] = []  # (seconds since trigger, TI state, busy)
    titles: dict[str, float] = {}
    state = ""
    while time.monotonic() - triggered < 180 and state not in ("success", "failed"):
        before = process_tree(worker.popen.pid)
        state = str(_task_instance(airflow, SLEEP, run_id, "sleep")["state"])
        after = process_tree(worker.popen.pid)
        busy = policy.is_busy(before) or policy.is_busy(after)
        at = time.monotonic() - triggered
        samples.append((at, state, busy))
        for process in before + after:
            titles.setdefault(process.cmdline[:80], at)
        time.sleep(0.25)
    assert _wait_for_run(airflow, SLEEP, run_id, timeout=120) == "success", airflow.diagnostics()

    running = [(at, busy) for at, s, busy in samples if s == "running"]
    received = _received_times(worker.log_text(), since=triggered_at)
    print("\nBUSY_E2E process titles first seen (s after trigger):")
    for title, at in sorted(titles.items(), key=lambda item: item[1]):
        print(f"BUSY_E2E   {at:6.1f} {title}")
    first_busy = next((at for at, _s, busy in samples if busy), float("nan"))
    receipt = f"{received[0] - triggered_at:.1f}" if received else "?"
    print(
        f"BUSY_E2E running samples {len(running)}, busy in {sum(b for _, b in running)}; "
        f"after the trigger: Celery received the task at {receipt}s, /proc shows it busy from "
        f"{first_busy:.1f}s (the receipt protection covers the gap)"
    )
    assert len(running) >= 10, samples
    assert all(busy for _at, busy in running), samples

    # After the task: idle, although the pool process keeps the task's supervisor title.
    airflow.wait_for("the worker to look idle", lambda: not _busy(worker), timeout=60, interval=1)
    left = [p for p in process_tree(worker.popen.pid) if policy.is_supervisor(p.cmdline)]
    print(f"BUSY_E2E after the task: {[p.cmdline for p in left]}")
    assert left, "expected the pool process to keep its 'airflow supervisor:' title"
    time.sleep(3)
    assert not _busy(worker), _titles(worker)


def _received_times(log: str, since: float) -> list[float]:
    """When the worker's Celery logged "Task execute_workload[...] received", after ``since``."""
    times = []
    for match in RECEIVED.finditer(log):
        stamp = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
        if stamp.timestamp() >= since - 1:
            times.append(stamp.timestamp())
    return times


def test_the_real_worker_loads_the_runtimes_celery_config(worker: Process) -> None:
    # Logged by celery_signals when Airflow reads CELERY_CONFIG in the worker process. (The
    # worker's /proc/<pid>/environ cannot show it: setproctitle reuses that memory.)
    assert "openmwaa Celery config loaded: scale-in protection on task receipt off" in (
        worker.log_text()
    )


RECEIPT_PROBE = """
import json, sys, time
from openmwaa_runtime import celery_signals, task_protection
task_protection.RECEIPT_MARKER = sys.argv[1]
# What `airflow celery worker` does first: Airflow's Celery app from celery_config_options.
from airflow.providers.celery.executors.celery_executor_utils import app
from celery.signals import task_received
started = time.time()
responses = task_received.send(sender=None, request=None)  # as the worker's consumer does
print(json.dumps({
    "sent_at": started,
    "returned_after": time.time() - started,
    "connected": any(r is celery_signals.on_task_received for r, _ in responses),
    "task_default_queue": app.conf.task_default_queue,
    "acks_late": app.conf.task_acks_late,
}))
"""


def _worker_celery_environment(airflow: AirflowUnderTest) -> dict[str, str]:
    """The environment the bootstrap gives ``airflow celery worker``, made by the runtime's own
    functions from the worker container's launch (the runtime zip the fixture unpacked)."""
    launch = airflow.launches["worker"]
    pyz = next(arg for arg in launch.argv if arg.endswith("/runtime.pyz"))
    env = config.airflow_environment(launch.env, 3)
    env.update(bootstrap.worker_celery_env(env, pyz, runtime_bundle.BUNDLE_PACKAGE))
    assert env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] == CONFIG_MODULE
    return env


def test_task_receipt_turns_protection_on_through_airflows_celery_app(
    airflow: AirflowUnderTest, airflow_venv: Path, tmp_path: Path
) -> None:
    env = _worker_celery_environment(airflow)
    marker = tmp_path / "task-received"
    with FakeEcsAgent() as agent:
        result = subprocess.run(
            [str(airflow_venv / "bin" / "python"), "-c", RECEIPT_PROBE, str(marker)],
            env={**env, "ECS_AGENT_URI": agent.uri},
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        out = json.loads(result.stdout.strip().splitlines()[-1])
        calls = list(agent.calls)

    assert out["connected"], out
    assert out["task_default_queue"] == airflow.queue_name and out["acks_late"] is True
    protect = {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
    assert [(path, body) for _at, path, body in calls] == [
        ("/v4/e2e-task/task-protection/v1/state", protect)
    ]
    assert marker.exists() and marker.stat().st_mtime <= calls[0][0] + 1
    print(
        f"\nRECEIPT_E2E task_received -> protection PUT at the agent "
        f"{(calls[0][0] - out['sent_at']) * 1000:.1f} ms; handler returned after "
        f"{out['returned_after'] * 1000:.1f} ms"
    )


class RecordingIO(AwsIO):
    """The real adapter; records when UpdateService returned."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.updates: list[tuple[float, int]] = []

    def set_desired_count(self, count: int) -> None:
        super().set_desired_count(count)
        self.updates.append((time.time(), count))


def _autoscaler_environment(airflow: AirflowUnderTest) -> dict[str, str]:
    """The autoscaler function's environment variables, resolved."""
    for resource in resources_of_type(airflow.template, "AWS::Lambda::Function").values():
        props = resource.get("Properties", {})
        if props.get("Handler") == "autoscaler.handler.handler":
            variables = props["Environment"]["Variables"]
            return {k: airflow.provisioned.resolver.resolve(v) for k, v in variables.items()}
    raise AssertionError("the template has no autoscaler function")


def test_autoscaler_scales_the_worker_service_from_the_live_broker_queue(
    airflow: AirflowUnderTest, worker: Process
) -> None:
    # The template's cluster and worker service (provisioned on moto), the function's own
    # environment, and its role's credentials under IAM enforcement; only the environment
    # name is made unique, so this test's metrics are its own.
    suffix = uuid.uuid4().hex[:8]
    environment = f"e2e-{suffix}"
    function_env = _autoscaler_environment(airflow)
    cluster, service = function_env["CLUSTER_NAME"], function_env["SERVICE_NAME"]
    queue_url = airflow.launches["worker"].env["OPENMWAA_CELERY_QUEUE_URL"]
    assert function_env["QUEUE_URL"] == queue_url
    sqs, ecs, cloudwatch = (airflow.aws.client(n) for n in ("sqs", "ecs", "cloudwatch"))
    ecs.update_service(cluster=cluster, service=service, desiredCount=1)
    role = airflow.function_principal("autoscaler.handler.handler")
    settings = Settings.from_env(
        {
            "QUEUE_URL": queue_url,
            "CLUSTER_NAME": cluster,
            "SERVICE_NAME": service,
            "MIN_WORKERS": "0",
            "MAX_WORKERS": "10",
            "TASKS_PER_WORKER": str(TASKS_PER_WORKER),
            "SAMPLE_INTERVAL_SECONDS": "5",
            "INVOCATION_BUDGET_SECONDS": "35",
            "ENVIRONMENT_NAME": environment,
            "TABLE_NAME": function_env["TABLE_NAME"],
        }
    )
    clients = ("sqs", "ecs", "cloudwatch", "dynamodb")
    io = RecordingIO(settings, *(airflow.aws.client(n, role) for n in clients))
    watcher = QueueWatcher(sqs, queue_url)
    baseline = sum(watcher.read())
    airflow.wait_for(f"DAG {SLEEP}", lambda: airflow.request("GET", f"/api/v2/dags/{SLEEP}"), 180)
    watcher.start()
    result: dict[str, InvocationSummary] = {}
    invocation = threading.Thread(
        target=lambda: result.setdefault("summary", handler.run_invocation(settings, io))
    )
    started = time.time()
    invocation.start()
    time.sleep(2.5)  # mid-interval, as a Lambda invocation already running would be
    triggered = time.time()
    run_ids = [_trigger(airflow, SLEEP) for _ in range(RUNS)]
    invocation.join(timeout=120)
    watcher.stop()
    summary = result["summary"]

    # -- the decisions: ceil((queued + in flight) / tasks_per_worker), within [0, 10] -----
    assert summary.errors == [], summary.errors
    assert summary.lease == "held"  # the table's lease, taken and released under IAM
    demands = [s.observation.demand for s in summary.samples]
    desired = 1
    for sample in summary.samples:
        demand = sample.observation.demand
        assert demand is not None
        target = min(10, max(0, math.ceil(demand / TASKS_PER_WORKER)))
        assert sample.decision.target == target
        desired = max(desired, target)  # scale-out at once; no scale-in without 300 s history
        assert sample.decision.desired == desired, (sample, demands)
    service_now = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert service_now["desiredCount"] == desired > 1, demands
    assert max(d for d in demands if d is not None) >= RUNS - baseline, demands
    assert [count for _at, count in io.updates] == sorted({count for _, count in io.updates})

    # -- the metrics are in CloudWatch ----------------------------------------------------
    queries = [
        {
            "Id": name.lower(),
            "MetricStat": {
                "Metric": {
                    "Namespace": "OpenMWAA",
                    "MetricName": name,
                    "Dimensions": [{"Name": "Environment", "Value": environment}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        for name in ("QueuedTasks", "RunningTasks")
    ]
    now = datetime.now(UTC)
    metrics = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )["MetricDataResults"]
    peaks = {m["Id"]: max(m["Values"], default=None) for m in metrics}
    assert peaks == {
        "queuedtasks": max(s.observation.queued or 0 for s in summary.samples),
        "runningtasks": max(s.observation.running or 0 for s in summary.samples),
    }, peaks

    # -- reaction time (printed, not asserted) --------------------------------------------
    first_message = watcher.first(lambda q, f: q + f > baseline)
    more_needed = watcher.first(lambda q, f: math.ceil((q + f) / TASKS_PER_WORKER) > 1)
    scaled = io.updates[0][0]
    assert first_message is not None and more_needed is not None
    print(
        f"\nAUTOSCALER_E2E reaction={scaled - first_message:.1f}s "
        f"(first message visible in the queue -> UpdateService returned; "
        f"{scaled - more_needed:.1f}s from the queue first needing a 2nd worker; "
        f"trigger -> first message {first_message - triggered:.1f}s; invocation started "
        f"{triggered - started:.1f}s before the trigger)"
    )
    print(
        "AUTOSCALER_E2E samples (s, queued, in flight, desired): "
        + ", ".join(
            f"({s.at - started:.0f}, {s.observation.queued}, {s.observation.running}, "
            f"{s.decision.desired})"
            for s in summary.samples
        )
    )

    for run_id in run_ids:
        state = _wait_for_run(airflow, SLEEP, run_id, timeout=240)
        assert state == "success", airflow.request("GET", _run_path(SLEEP, run_id))
