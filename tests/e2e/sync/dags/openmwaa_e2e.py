"""DAGs of the end-to-end test (copied into the test's sync root, as the DAG sync would)."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

from airflow.sdk import dag, task


@dag(
    dag_id="openmwaa_e2e_hello",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
)
def openmwaa_e2e_hello() -> None:
    @task
    def hello() -> str:
        print("OPENMWAA_E2E_MARKER hello from", socket.gethostname())
        print("STARTUP_SH_MARK=" + os.environ.get("STARTUP_SH_MARK", "<unset>"))
        return "ok"

    hello()


@dag(
    dag_id="openmwaa_e2e_sleep",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
)
def openmwaa_e2e_sleep() -> None:
    @task
    def sleep(seconds: int = 25) -> str:
        print("OPENMWAA_E2E_SLEEP started")
        time.sleep(seconds)
        print("OPENMWAA_E2E_SLEEP finished")
        return "slept"

    sleep()


@dag(
    dag_id="openmwaa_e2e_requirements",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
)
def openmwaa_e2e_requirements() -> None:
    @task
    def use_a_requirement() -> str:
        # Imported in the task, not at parse time: only the worker has requirements.txt's
        # packages (from the requirements build's folder) when test_requirements_e2e runs.
        import cowsay

        print("OPENMWAA_E2E_REQUIREMENT from", cowsay.__file__)
        return "imported"

    use_a_requirement()


openmwaa_e2e_hello()
openmwaa_e2e_sleep()
openmwaa_e2e_requirements()
