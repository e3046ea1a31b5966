"""End to end, faults: the environment recovers from what ECS, PostgreSQL and AWS do to it.

Each test triggers a run of ``openmwaa_faults_work`` (tests/e2e/sync/dags/openmwaa_faults.py:
``work`` sleeps, then ``after`` runs; one retry, 5 s apart) on the session's environment,
applies one fault while ``work`` runs, waits for the run to finish and asserts its outcome:
the final state, whether a retry was used (``try_number`` and the tries endpoint), and, from
the ledger the DAG's tasks write, that no work was done twice (no two ``start`` lines of the
same run, task and try; no line of a try after the next try started, so tries never
overlap). Recovery times are printed (``FAULTS_E2E ...`` lines, see ``pytest -s``), never
asserted: the waits only have generous time-outs.

The ledger is a local file in the session's work directory, passed to the tasks as the run's
``ledger`` param (the run's conf): the test cannot add a variable to the containers, and every
component runs on this machine, so a plain file both sides can reach is enough. Lines are
single ``O_APPEND`` writes (see the DAG file).

The faults:

* a worker killed outright (SIGKILL to its whole process tree, as when its ECS task dies),
  then started again as the ECS service would: the task is failed by the scheduler's
  heartbeat timeout and retried;
* a worker stopped as ECS stops it while a task longer than the container's stop timeout
  runs: SIGTERM (Celery's warm shutdown lets the task go on), SIGKILL after ``StopTimeout``;
  the task is cut off, then retried. (The short case, a task that ends within the stop
  timeout, is ``test_worker_finishes_its_running_task_on_sigterm`` in test_airflow_e2e.py.)
* PostgreSQL restarted (``pg_ctl restart -m fast``: every connection cut): nothing retried
  (a component that exits on the lost connection is started again, as ECS would);
* the AWS endpoint (moto: SQS broker, CloudWatch Logs, Secrets Manager) frozen for 20 s
  (SIGSTOP/SIGCONT) as ``work`` ends: nothing retried; ``after``, which becomes ready during
  the freeze, is sent to SQS again until the broker answers (``[celery]
  task_publish_max_retries``);
* the scheduler killed outright and started again: nothing retried;
* the REST API loaded by 20 concurrent clients for 60 s while a task runs: nothing retried
  (requests per second, latencies, errors and the longest gap between the task's
  heartbeats, read from the metadata database, are printed).

Every test leaves all components running (what it killed is started again, from its launch
spec, as the ECS service would), PostgreSQL up and moto answering. Run alone with
``pytest -m faults tests/e2e -s``; this module runs before test_iam_e2e (pytest orders
modules by name), whose record of IAM decisions then covers these runs too.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import re
import signal
import statistics
import subprocess
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .cfn import resources_of_type
from .conftest import AirflowUnderTest
from .localenv import LocalPostgres, descendants
from .test_airflow_e2e import _run_path, _task_instance

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(3600)]

DAG_ID = "openmwaa_faults_work"
RUN_TIMEOUT = 300.0
"""Time-out of a run that needs no heartbeat time-out to recover."""
FREEZE_SECONDS = 20.0
LOAD_THREADS = 20
LOAD_SECONDS = 60.0
LOAD_CLIENT_TIMEOUT = 60.0
"""Longer than the api-server's database pool time-out (30 s): a stalled request is seen
ending (with its status), not cut by the client."""
ECS_DEFAULT_STOP_TIMEOUT = 30
"""ECS's stop timeout when a container definition sets none."""
AIRFLOW_HEARTBEAT_TIMEOUT = 300
"""``[scheduler] task_instance_heartbeat_timeout``'s default in Airflow."""


# --- the ledger --------------------------------------------------------------------------


@dataclass
class Ledger:
    """The JSON-lines file the fault DAG's tasks append to (see the DAG file)."""

    path: Path

    def entries(self, run_id: str) -> list[dict[str, Any]]:
        """The run's lines, in the order they were written."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = [json.loads(line) for line in lines if line.strip()]
        return [e for e in entries if e["dag_id"] == DAG_ID and e["run_id"] == run_id]

    def first(self, run_id: str, task: str, event: str, try_number: int) -> dict[str, Any] | None:
        for entry in self.entries(run_id):
            if (entry["task_id"], entry["event"], entry["try_number"]) == (
                task,
                event,
                try_number,
            ):
                return entry
        return None


@dataclass
class Attempt:
    """One try of one task, as the ledger saw it."""

    task: str
    try_number: int
    lines: list[dict[str, Any]] = field(default_factory=list)

    def times(self, event: str) -> list[float]:
        return [float(e["at"]) for e in self.lines if e["event"] == event]

    @property
    def started(self) -> float:
        return min(self.times("start"))

    @property
    def last_seen(self) -> float:
        return max(float(e["at"]) for e in self.lines)

    @property
    def finished(self) -> bool:
        return bool(self.times("end"))

    @property
    def pids(self) -> set[int]:
        return {int(e["pid"]) for e in self.lines}


def check_no_duplicate_work(ledger: Ledger, run_id: str) -> dict[str, list[Attempt]]:
    """Assert that the ledger shows no work done twice for ``run_id``: each (task, try) started
    once, by one process; the tries of a task never overlap (no line of a try after the next
    try's start); and each task's last try ended. Returns each task's tries, in order."""
    attempts: dict[tuple[str, int], Attempt] = {}
    for entry in ledger.entries(run_id):
        key = (entry["task_id"], int(entry["try_number"]))
        attempts.setdefault(key, Attempt(*key)).lines.append(entry)
    by_task: dict[str, list[Attempt]] = defaultdict(list)
    for (task, _), attempt in sorted(attempts.items()):
        starts = attempt.times("start")
        assert len(starts) == 1, f"{task} try {attempt.try_number} started {len(starts)} times"
        assert len(attempt.pids) == 1, f"{task} try {attempt.try_number} ran in {attempt.pids}"
        assert len(attempt.times("end")) <= 1, f"{task} try {attempt.try_number} ended twice"
        by_task[task].append(attempt)
    for task, tries in by_task.items():
        for earlier, later in itertools.pairwise(tries):
            assert earlier.last_seen <= later.started, (
                f"{task}: try {earlier.try_number} was still running "
                f"{earlier.last_seen - later.started:.1f} s after try {later.try_number} started"
            )
        assert tries[-1].finished, f"{task}: its last try ({tries[-1].try_number}) never ended"
    return dict(by_task)


@pytest.fixture(scope="module")
def ledger(airflow: AirflowUnderTest) -> Ledger:
    return Ledger(airflow.work_dir / "faults-ledger.jsonl")


# --- the environment ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def leave_everything_running(airflow: AirflowUnderTest) -> Iterator[None]:
    """After each test, start again any component the fault left stopped (as ECS would)."""
    yield
    airflow.restart_exited()


@pytest.fixture(scope="module")
def postgres(airflow: AirflowUnderTest) -> LocalPostgres:
    """The session's PostgreSQL."""
    return airflow.postgres


def _database(airflow: AirflowUnderTest, postgres: LocalPostgres) -> str:
    """The metadata database: the one the database secret's user owns."""
    provisioned = airflow.provisioned
    secret = json.loads(provisioned.secret_values[provisioned.database_secret_arn])
    if secret.get("dbname"):
        return str(secret["dbname"])
    user = str(secret["username"]).replace("'", "''")
    names = postgres.sql(
        "SELECT datname FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid "
        f"WHERE r.rolname = '{user}'"
    ).split()
    assert len(names) == 1, names
    return names[0]


def _health(airflow: AirflowUnderTest) -> dict[str, Any]:
    health: dict[str, Any] = airflow.request("GET", "/api/v2/monitor/health", auth=False)
    return health


def _effective_setting(
    airflow: AirflowUnderTest, component: str, variable: str, default: str
) -> tuple[str, bool]:
    """A setting of a running component: from the environment of its Airflow process (the
    bootstrap and startup.sh add to the template's), else Airflow's default. Returns the
    value and whether it was set."""
    process = airflow.processes[component]
    values = []
    for pid in [process.popen.pid, *descendants(process.popen.pid)]:
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for item in raw.split(b"\0"):
            name, _, value = item.partition(b"=")
            if name.decode(errors="replace") == variable:
                values.append(value.decode(errors="replace"))
    return (values[-1], True) if values else (default, False)


def _heartbeat_timeout(airflow: AirflowUnderTest) -> tuple[int, str]:
    value, is_set = _effective_setting(
        airflow,
        "scheduler",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
        str(AIRFLOW_HEARTBEAT_TIMEOUT),
    )
    return int(value), f"{value} s ({'set' if is_set else 'Airflow default'})"


def _stop_timeout(airflow: AirflowUnderTest) -> int:
    """The worker container's StopTimeout in the template (ECS's default if it sets none)."""
    name = airflow.launches["worker"].container
    for resource in resources_of_type(airflow.template, "AWS::ECS::TaskDefinition").values():
        for container in resource["Properties"].get("ContainerDefinitions", []):
            env = {e["Name"]: e.get("Value") for e in container.get("Environment", [])}
            if container.get("Name") == name and env.get("OPENMWAA_COMPONENT") == "worker":
                return int(container.get("StopTimeout", ECS_DEFAULT_STOP_TIMEOUT))
    raise AssertionError(f"no worker container {name!r} in the template")


# --- runs --------------------------------------------------------------------------------


def _trigger(airflow: AirflowUnderTest, ledger: Ledger, seconds: float, retry: float = 5) -> str:
    airflow.wait_for(
        f"DAG {DAG_ID} to be parsed",
        lambda: airflow.request("GET", f"/api/v2/dags/{DAG_ID}"),
        timeout=180,
    )
    conf = {"ledger": str(ledger.path), "seconds": seconds, "retry_seconds": retry}
    body = {"logical_date": None, "conf": conf}
    run_id: str = airflow.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)["dag_run_id"]
    return run_id


def _wait_for_start(
    airflow: AirflowUnderTest, ledger: Ledger, run_id: str, try_number: int = 1
) -> dict[str, Any]:
    """Wait until try ``try_number`` of ``work`` has written its ``start`` line."""
    entry: dict[str, Any] = airflow.wait_for(
        f"try {try_number} of work in run {run_id} to start",
        lambda: ledger.first(run_id, "work", "start", try_number),
        timeout=RUN_TIMEOUT,
        interval=0.5,
    )
    return entry


def _run_state(airflow: AirflowUnderTest, run_id: str) -> str | None:
    state: str = airflow.request("GET", _run_path(DAG_ID, run_id))["state"]
    return state if state in ("success", "failed") else None


def _wait_for_run(airflow: AirflowUnderTest, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    """Wait for the run to finish (tolerating an api-server that does not answer for a while);
    returns its state."""
    state: str = airflow.wait_for(
        f"run {run_id} of {DAG_ID} to finish", lambda: _run_state(airflow, run_id), timeout
    )
    return state


def _tries(airflow: AirflowUnderTest, run_id: str, task: str) -> list[dict[str, Any]]:
    """Every try of a task instance (the tries endpoint), in order."""
    body = airflow.request("GET", f"{_run_path(DAG_ID, run_id)}/taskInstances/{task}/tries")
    tries: list[dict[str, Any]] = sorted(body["task_instances"], key=lambda t: t["try_number"])
    return tries


def _seconds(timestamp: str | None) -> float:
    assert timestamp, "no timestamp"
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _assert_succeeded_first_time(
    airflow: AirflowUnderTest, ledger: Ledger, run_id: str, state: str
) -> dict[str, list[Attempt]]:
    """The run succeeded with no retry: each task ran once, ledger and tries agree."""
    assert state == "success", airflow.diagnostics()
    attempts = check_no_duplicate_work(ledger, run_id)
    assert {task: [a.try_number for a in tries] for task, tries in attempts.items()} == {
        "work": [1],
        "after": [1],
    }, attempts
    for task in ("work", "after"):
        assert [(t["try_number"], t["state"]) for t in _tries(airflow, run_id, task)] == [
            (1, "success")
        ]
    return attempts


def _report(line: str) -> None:
    print(f"\nFAULTS_E2E {line}", flush=True)


# --- the tests ---------------------------------------------------------------------------


def test_postgres_restart_mid_task_loses_nothing(
    airflow: AirflowUnderTest, ledger: Ledger, postgres: LocalPostgres
) -> None:
    """PostgreSQL restarted (fast shutdown: every connection cut) while a task runs: the task
    and the run still succeed with no retry and no work done twice.

    A component whose database call fails while the server is down may exit (the scheduler
    does, now and then: an OperationalError in its loop ends it); as the ECS service would,
    the test starts it again, and prints which ones it had to replace."""
    run_id = _trigger(airflow, ledger, seconds=40)
    _wait_for_start(airflow, ledger, run_id)
    time.sleep(5)  # a heartbeat or two on the old connections first

    restarted_at = time.monotonic()
    downtime = postgres.restart()
    replaced: list[str] = []

    def finished() -> str | None:
        replaced.extend(airflow.restart_exited())
        return _run_state(airflow, run_id)

    state: str = airflow.wait_for(f"run {run_id} to finish", finished, RUN_TIMEOUT)
    took = time.monotonic() - restarted_at

    _assert_succeeded_first_time(airflow, ledger, run_id, state)
    _report(
        f"postgres restart: server back after {downtime:.1f} s; run {state} "
        f"{took:.0f} s after the restart began; components that exited and were replaced: "
        f"{replaced or 'none'}"
    )


PUBLISH_TIMEOUT = re.compile(
    r"Celery Task Timeout Error for Workload: \(TaskInstanceKey\(dag_id='"
    + DAG_ID
    + r"', task_id='after', run_id='(?P<run_id>[^']+)', try_number=1,"
)


def test_aws_endpoint_frozen_20s_delays_work_and_costs_no_try(
    airflow: AirflowUnderTest, ledger: Ledger
) -> None:
    """moto (the SQS broker, CloudWatch Logs, Secrets Manager) stops answering for 20 s from
    6 s before ``work`` ends: ``work`` is not retried (its end waits for its log upload), the
    run succeeds and no work is done twice.

    ``after`` becomes ready during the freeze. The scheduler's sends of it to SQS time out
    (``[celery] operation_timeout``, 1 s) and are tried again once per scheduler loop, up to
    ``[celery] task_publish_max_retries`` times: the environment's 30 outlast the freeze, so
    ``after`` runs on its first try. (With Airflow's 3, its try 1 failed unrun and the run
    needed the retry; a task with no retries left would have failed.) A timed-out
    SendMessage is not withdrawn: moto handles it when it answers again, so try 1 may have
    several messages; Airflow runs it once (the others are "already running elsewhere")."""
    scheduler_log = airflow.processes["scheduler"]
    log_offset = len(scheduler_log.log_text())
    run_id = _trigger(airflow, ledger, seconds=20)
    start = _wait_for_start(airflow, ledger, run_id)
    time.sleep(max(0.0, start["at"] + 14 - time.time()))  # work ends 6 s into the freeze

    frozen_at = time.monotonic()
    airflow.moto.freeze(FREEZE_SECONDS)
    thawed_at = time.monotonic()
    state = _wait_for_run(airflow, run_id)
    finished = time.monotonic() - thawed_at
    text = scheduler_log.log_text()[log_offset:]
    timeouts = sum(1 for m in PUBLISH_TIMEOUT.finditer(text) if m["run_id"] == run_id)

    assert state == "success", airflow.diagnostics()
    attempts = check_no_duplicate_work(ledger, run_id)
    assert [a.try_number for a in attempts["work"]] == [1], attempts
    assert [(t["try_number"], t["state"]) for t in _tries(airflow, run_id, "work")] == [
        (1, "success")
    ]
    assert timeouts >= 1, "no send of 'after' timed out: the freeze missed it"
    assert [a.try_number for a in attempts["after"]] == [1], attempts["after"]
    assert [(t["try_number"], t["state"]) for t in _tries(airflow, run_id, "after")] == [
        (1, "success")
    ], "the freeze cost 'after' a try"
    work = attempts["work"][0]
    _report(
        f"AWS endpoint frozen {thawed_at - frozen_at:.0f} s: work's last line "
        f"{work.last_seen - start['at']:.0f} s after its start (20 s of work); after: "
        f"{timeouts} timed-out sends of try 1 to SQS, then ran on try 1; run {state} "
        f"{finished:.0f} s after the endpoint answered again"
    )
    airflow.assert_running()


def test_scheduler_hard_kill_and_restart_mid_task(
    airflow: AirflowUnderTest, ledger: Ledger
) -> None:
    """The scheduler killed outright (its ECS task dies) while a task runs, then started again:
    the running task goes on, the new scheduler schedules ``after``, the run succeeds with no
    retry and no work done twice."""
    run_id = _trigger(airflow, ledger, seconds=30)
    _wait_for_start(airflow, ledger, run_id)

    killed_at = time.time()
    airflow.processes["scheduler"].hard_kill()
    restarted = airflow.restart_exited()
    assert restarted == ["scheduler"], restarted

    def new_scheduler_healthy() -> bool:
        scheduler = _health(airflow).get("scheduler", {})
        beat = scheduler.get("latest_scheduler_heartbeat")
        return scheduler.get("status") == "healthy" and bool(beat) and _seconds(beat) > killed_at

    airflow.wait_for("the new scheduler's heartbeat", new_scheduler_healthy, 300, interval=0.5)
    healthy_after = time.time() - killed_at
    state = _wait_for_run(airflow, run_id)
    finished = time.time() - killed_at

    _assert_succeeded_first_time(airflow, ledger, run_id, state)
    _report(
        f"scheduler hard-killed: a new scheduler healthy (heartbeat after the kill) "
        f"{healthy_after:.0f} s after the kill; run {state} {finished:.0f} s after the kill"
    )


@dataclass
class LoadFigures:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] += 1


def _load(airflow: AirflowUnderTest, figures: LoadFigures, until: float) -> None:
    """One client: GET /api/v2/dags on a kept-alive connection until ``until``."""
    url = urllib.parse.urlsplit(airflow.api_url)
    headers = {"Authorization": f"Bearer {airflow.token()}", "Accept": "application/json"}
    host = url.hostname or "127.0.0.1"
    connection = http.client.HTTPConnection(host, url.port, timeout=LOAD_CLIENT_TIMEOUT)
    while time.monotonic() < until:
        began = time.monotonic()
        try:
            connection.request("GET", "/api/v2/dags?limit=100", headers=headers)
            response = connection.getresponse()
            response.read()
            status = str(response.status)
            if response.getheader("Connection", "").lower() == "close":
                connection.close()  # http.client connects again on the next request
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
            connection.close()
        figures.add(time.monotonic() - began, status)
    connection.close()


def _heartbeat_of(postgres: LocalPostgres, database: str, run_id: str) -> tuple[float, str]:
    """``work``'s last_heartbeat_at (epoch seconds, 0 if none) and state, from the database."""
    quoted = run_id.replace("'", "''")
    row = postgres.sql(
        "SELECT coalesce(extract(epoch FROM last_heartbeat_at), 0), state FROM task_instance "
        f"WHERE dag_id = '{DAG_ID}' AND run_id = '{quoted}' AND task_id = 'work'",
        database,
    ).strip()
    beat, _, state = row.partition("|")
    return float(beat or 0), state


def _heartbeat_timeout_reasons(
    airflow: AirflowUnderTest, postgres: LocalPostgres, run_id: str
) -> str:
    """The scheduler's records (the ``log`` table, the UI's audit log) of ``work`` failed by the
    heartbeat timeout in ``run_id``."""
    quoted = run_id.replace("'", "''")
    return postgres.sql(
        "SELECT extra FROM log WHERE event = 'heartbeat timeout' "
        f"AND dag_id = '{DAG_ID}' AND run_id = '{quoted}' AND task_id = 'work'",
        _database(airflow, postgres),
    )


def _assert_failed_by_the_configured_timeout(
    airflow: AirflowUnderTest, postgres: LocalPostgres, run_id: str
) -> None:
    """The scheduler failed try 1 for its heartbeat, with the timeout the template sets (not
    Airflow's 300 s), and recorded why."""
    configured = airflow.launches["scheduler"].template_env[
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"
    ]
    reasons = _heartbeat_timeout_reasons(airflow, postgres, run_id)
    assert f"within time limit ({configured} seconds)" in reasons, reasons


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_api_under_load_while_a_task_runs(
    airflow: AirflowUnderTest, ledger: Ledger, postgres: LocalPostgres
) -> None:
    """20 clients call GET /api/v2/dags for 60 s while a 75 s task runs: every request gets
    an answer that is not an error (the api-server's pool is sized for it) and the task still
    succeeds with no retry. Prints the API's throughput and latencies, and the longest gap
    between the task's heartbeats in the metadata database."""
    database = _database(airflow, postgres)
    run_id = _trigger(airflow, ledger, seconds=75)
    _wait_for_start(airflow, ledger, run_id)

    figures = LoadFigures()
    began = time.monotonic()
    until = began + LOAD_SECONDS
    clients = [
        threading.Thread(target=_load, args=(airflow, figures, until), daemon=True)
        for _ in range(LOAD_THREADS)
    ]
    for client in clients:
        client.start()
    beats: list[float] = []
    observed_from = time.time()
    while time.monotonic() < until:
        with contextlib.suppress(subprocess.CalledProcessError):
            beat, _state = _heartbeat_of(postgres, database, run_id)
            if beat and (not beats or beat != beats[-1]):
                beats.append(beat)
        time.sleep(1)
    observed_to = time.time()
    for client in clients:
        client.join(timeout=60)
    elapsed = time.monotonic() - began
    state = _wait_for_run(airflow, run_id)

    _assert_succeeded_first_time(airflow, ledger, run_id, state)
    ok = sum(n for status, n in figures.statuses.items() if status.startswith("2"))
    errors = {status: n for status, n in figures.statuses.items() if not status.startswith("2")}
    points = [observed_from, *beats, observed_to]
    gap = max(later - earlier for earlier, later in itertools.pairwise(points))
    latencies = figures.latencies
    _report(
        f"API load: {LOAD_THREADS} clients x {elapsed:.0f} s on GET /api/v2/dags: "
        f"{len(latencies)} requests, {len(latencies) / elapsed:.1f} req/s, "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms; {ok} 2xx, errors {errors or 'none'} "
        f"(500s: {figures.statuses.get('500', 0)})"
    )
    _report(
        f"API load: task heartbeats seen {len(beats)}, longest gap {gap:.1f} s "
        f"(heartbeat timeout {_heartbeat_timeout(airflow)[1]}); run {state}"
    )
    assert ok > 0, figures.statuses
    assert not errors, f"the api-server answered errors under load: {errors}"


def _pids_alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z":
                alive.add(pid)
    return alive


def _wait_for_retry(
    airflow: AirflowUnderTest, ledger: Ledger, run_id: str, timeout: float
) -> tuple[float, float]:
    """Wait until the scheduler has given up on try 1 of ``work`` (the task instance leaves
    ``running``) and try 2 has started; returns both times (epoch seconds)."""

    def try_one_over() -> float | None:
        instance = _task_instance(airflow, DAG_ID, run_id, "work")
        if instance["try_number"] == 1 and instance["state"] == "running":
            return None
        return time.time()

    gave_up = float(airflow.wait_for("try 1 of work to be failed", try_one_over, timeout, 1))
    start = airflow.wait_for(
        "try 2 of work to start",
        lambda: ledger.first(run_id, "work", "start", 2),
        timeout=RUN_TIMEOUT,
        interval=0.5,
    )
    return gave_up, float(start["at"])


def _assert_retried_once(
    airflow: AirflowUnderTest, ledger: Ledger, run_id: str, state: str, killed_at: float
) -> dict[str, list[Attempt]]:
    """The run succeeded on ``work``'s second try, the first one cut off by the kill."""
    assert state == "success", airflow.diagnostics()
    attempts = check_no_duplicate_work(ledger, run_id)
    first, second = attempts["work"]
    assert (first.try_number, second.try_number) == (1, 2), attempts
    assert not first.finished, "try 1 ended, yet the test killed it"
    assert first.last_seen <= killed_at + 1, "try 1 wrote to the ledger after it was killed"
    assert not _pids_alive(first.pids), f"try 1's process {first.pids} survived the kill"
    assert second.started > killed_at
    assert [a.try_number for a in attempts["after"]] == [1]
    tries = [(t["try_number"], t["state"]) for t in _tries(airflow, run_id, "work")]
    assert tries == [(1, "failed"), (2, "success")], tries
    instance = _task_instance(airflow, DAG_ID, run_id, "work")
    assert (instance["try_number"], instance["state"]) == (2, "success"), instance
    return attempts


def test_hard_killed_worker_task_is_retried_once(
    airflow: AirflowUnderTest, ledger: Ledger, postgres: LocalPostgres
) -> None:
    """A worker killed outright (SIGKILL to every process of it, as when its ECS task dies)
    while a task runs, then a new worker started: once the task's heartbeat times out, the
    scheduler fails try 1, try 2 runs on the new worker and the run succeeds; the two tries
    never overlap and nothing ran twice."""
    timeout, timeout_text = _heartbeat_timeout(airflow)
    run_id = _trigger(airflow, ledger, seconds=900, retry=5)
    _wait_for_start(airflow, ledger, run_id)
    time.sleep(2)

    killed_at = time.time()
    airflow.processes["worker"].hard_kill()
    assert airflow.restart_exited() == ["worker"]
    worker_back = time.time() - killed_at
    gave_up, retried = _wait_for_retry(airflow, ledger, run_id, timeout + 300)
    state = _wait_for_run(airflow, run_id, RUN_TIMEOUT)
    finished = time.time() - killed_at

    _report(
        f"hard-killed worker: new worker ready after {worker_back:.0f} s; try 1 failed "
        f"{gave_up - killed_at:.0f} s after the kill (heartbeat timeout {timeout_text}); "
        f"try 2 started after {retried - killed_at:.0f} s; run {state} after {finished:.0f} s"
    )
    _assert_retried_once(airflow, ledger, run_id, state, killed_at)
    _assert_failed_by_the_configured_timeout(airflow, postgres, run_id)


def test_worker_stopped_by_ecs_cuts_off_a_longer_task_which_is_retried(
    airflow: AirflowUnderTest, ledger: Ledger, postgres: LocalPostgres
) -> None:
    """ECS stops a worker while a task longer than the container's StopTimeout runs: SIGTERM
    to PID 1 (Celery's warm shutdown: the task goes on), SIGKILL to everything after the stop
    timeout. The task is cut off there (its ledger stops at the kill, with no end), then
    failed by the heartbeat timeout and retried on the new worker; the run succeeds and no
    work ran twice."""
    stop_timeout = _stop_timeout(airflow)
    timeout, timeout_text = _heartbeat_timeout(airflow)
    run_id = _trigger(airflow, ledger, seconds=stop_timeout + 30, retry=5)
    _wait_for_start(airflow, ledger, run_id)
    time.sleep(2)

    worker = airflow.processes["worker"]
    stopped_at = time.time()
    worker.popen.send_signal(signal.SIGTERM)
    exit_code: int | None
    try:
        exit_code = worker.popen.wait(stop_timeout)
    except subprocess.TimeoutExpired:
        exit_code = None
    killed_at = time.time()
    worker.hard_kill()  # what is left of the task (ECS kills every process of it)
    assert airflow.restart_exited() == ["worker"]
    gave_up, retried = _wait_for_retry(airflow, ledger, run_id, timeout + 300)
    state = _wait_for_run(airflow, run_id, RUN_TIMEOUT)
    finished = time.time() - stopped_at

    first_lines = [
        float(e["at"])
        for e in ledger.entries(run_id)
        if e["task_id"] == "work" and e["try_number"] == 1
    ]
    ran_on = max(first_lines, default=stopped_at) - stopped_at
    _report(
        f"worker stopped as ECS does (StopTimeout {stop_timeout} s) mid-task: try 1 ran on "
        f"{ran_on:.0f} s after SIGTERM, then SIGKILL; worker exit code at the stop timeout: "
        f"{exit_code}; try 1 failed {gave_up - killed_at:.0f} s after the kill (heartbeat "
        f"timeout {timeout_text}); try 2 started {retried - killed_at:.0f} s after the kill; "
        f"run {state} {finished:.0f} s after SIGTERM"
    )
    assert exit_code is None, f"the worker exited ({exit_code}) within the stop timeout"
    _assert_retried_once(airflow, ledger, run_id, state, killed_at)
    _assert_failed_by_the_configured_timeout(airflow, postgres, run_id)
    assert ran_on > stop_timeout - 10, (
        "try 1 stopped well before the SIGKILL: warm shutdown should let it run on"
    )
