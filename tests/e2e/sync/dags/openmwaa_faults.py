"""DAG of the end-to-end fault suite (tests/e2e/test_faults_e2e.py), synced like the others.

``openmwaa_faults_work``: ``work`` sleeps (``seconds`` on the first try, ``retry_seconds`` on
later ones), then ``after`` runs, so a run also needs the scheduler to schedule a task after
the fault. Both tasks have one retry, 5 s apart.

Each task appends JSON lines to a ledger, a local file named by the run's ``ledger`` param
(the test passes it in the run's conf): ``start``, a ``tick`` every 5 s while ``work``
sleeps, then ``end``, or ``abort`` if the task process is told to stop. Each line holds the
DAG, run, task, try number, pid, host and wall-clock time, and is written with a single
``write`` on an ``O_APPEND`` descriptor, so concurrent writers never interleave within a
line. A plain file works because every component of the test runs on one machine; on ECS a
ledger would need storage shared by all workers (the sync root is read-only there). Without
a ``ledger`` param, nothing is written.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task

TICK_SECONDS = 5.0


def _ledger(event: str, **extra: Any) -> None:
    context = get_current_context()
    path = str(context["params"].get("ledger") or "")
    if not os.path.isabs(path):
        return
    ti = context["ti"]
    record = {
        "event": event,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "try_number": ti.try_number,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "at": time.time(),
        **extra,
    }
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dag(
    dag_id="openmwaa_faults_work",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    params={"ledger": "", "seconds": 30, "retry_seconds": 5},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["openmwaa-e2e", "faults"],
)
def openmwaa_faults_work() -> None:
    @task
    def work() -> str:
        context = get_current_context()
        params = context["params"]
        first = context["ti"].try_number <= 1
        seconds = float(params["seconds"] if first else params["retry_seconds"])
        _ledger("start", seconds=seconds)
        print(f"OPENMWAA_FAULTS work: sleeping {seconds:.0f} s")
        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                time.sleep(min(TICK_SECONDS, remaining))
                _ledger("tick")
        except BaseException as error:  # SIGTERM reaches the task as an exception
            _ledger("abort", error=type(error).__name__)
            raise
        _ledger("end")
        return f"slept {seconds:.0f} s"

    @task
    def after() -> str:
        _ledger("start")
        _ledger("end")
        return "after"

    work() >> after()


openmwaa_faults_work()
