"""MWAA compatibility suite: the environment variables MWAA sets for tasks and startup.sh."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag, get_current_context, task

COMMON = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["mwaa-compat"],
}


def _require(name: str, expected: str) -> None:
    value = os.environ.get(name, "<unset>")
    print(f"{name}={value}")
    if value != expected:
        raise ValueError(f"{name} is {value!r}, not {expected!r}")


@dag(dag_id="mwaa_compat_component", **COMMON)
def component() -> None:
    @task
    def runs_on_the_worker() -> None:
        _require("MWAA_AIRFLOW_COMPONENT", "worker")
        _require("MWAA_COMMAND", "worker")

    runs_on_the_worker()


@dag(dag_id="mwaa_compat_airflow_version", **COMMON)
def airflow_version() -> None:
    @task
    def matches_the_installed_airflow() -> str:
        import airflow

        _require("AIRFLOW_VERSION", airflow.__version__)
        return airflow.__version__

    matches_the_installed_airflow()


@dag(dag_id="mwaa_compat_startup_exports", **COMMON)
def startup_exports() -> None:
    @task
    def custom_export_arrives_reserved_one_does_not() -> None:
        expected = get_current_context()["params"]["environment_name"]
        _require("MWAA_COMPAT_STARTUP_FLAG", "set-by-startup-sh-for-worker")
        _require("MWAA_COMPAT_STARTUP_SAW_ENV_NAME", expected)
        _require("AIRFLOW_ENV_NAME", expected)

    custom_export_arrives_reserved_one_does_not()


component()
airflow_version()
startup_exports()
