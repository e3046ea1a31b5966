"""MWAA compatibility suite: MWAA's file layout under its AIRFLOW_HOME, /usr/local/airflow.

Each DAG checks one path that DAGs written for MWAA name literally; its task fails (a
non-zero exit, or an exception) when the path is missing or holds something else.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task

MWAA_HOME = "/usr/local/airflow"
COMMON = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "is_paused_upon_creation": False,
    "tags": ["mwaa-compat"],
}


@dag(dag_id="mwaa_compat_dags_folder", **COMMON)
def dags_folder() -> None:
    # As MWAA's samples do: change into a folder shipped beside the DAGs and read a file.
    BashOperator(
        task_id="read_beside_the_dags",
        bash_command=(
            "set -eu; cd /usr/local/airflow/dags/sampledb; "
            "grep -qx MWAA_COMPAT_SAMPLEDB marker.txt; "
            'test "$(head -n 1 customers.csv)" = "id,name"; pwd'
        ),
    )


@dag(dag_id="mwaa_compat_plugins_folder", **COMMON)
def plugins_folder() -> None:
    # A script shipped in plugins.zip, run by its path (MWAA's documented pattern).
    BashOperator(
        task_id="run_a_plugins_script",
        bash_command=(
            "set -eu; out=$(bash /usr/local/airflow/plugins/transform_test.sh ada); "
            'echo "$out"; test "$out" = "ADA transformed by plugins.zip"'
        ),
    )


@dag(dag_id="mwaa_compat_requirements_file", **COMMON)
def requirements_file() -> None:
    @task
    def read_requirements() -> str:
        path = f"{MWAA_HOME}/requirements/requirements.txt"
        with open(path) as f:
            text = f.read()
        if "MWAA_COMPAT_REQUIREMENTS_MARKER" not in text:
            raise ValueError(f"{path} is not this environment's requirements.txt: {text!r}")
        return path

    read_requirements()


@dag(dag_id="mwaa_compat_startup_file", **COMMON)
def startup_file() -> None:
    @task
    def read_startup_script() -> str:
        path = f"{MWAA_HOME}/startup/startup.sh"
        with open(path) as f:
            text = f.read()
        if "MWAA_COMPAT_STARTUP_MARKER" not in text:
            raise ValueError(f"{path} is not this environment's startup script: {text!r}")
        return path

    read_startup_script()


@dag(dag_id="mwaa_compat_airflow_home", **COMMON)
def airflow_home() -> None:
    # $AIRFLOW_HOME/dags and $AIRFLOW_HOME/plugins hold the DAGs and plugins, as on MWAA.
    BashOperator(
        task_id="use_airflow_home_paths",
        bash_command=(
            'set -eu; echo "AIRFLOW_HOME=$AIRFLOW_HOME"; '
            'grep -qx MWAA_COMPAT_SAMPLEDB "$AIRFLOW_HOME/dags/sampledb/marker.txt"; '
            'test "$(bash "$AIRFLOW_HOME/plugins/transform_test.sh" x)" = '
            '"X transformed by plugins.zip"'
        ),
    )

    @task
    def same_files_as_mwaa_home() -> None:
        home = os.environ["AIRFLOW_HOME"]
        for name in ("dags", "plugins"):
            if not os.path.samefile(os.path.join(home, name), f"{MWAA_HOME}/{name}"):
                raise ValueError(f"$AIRFLOW_HOME/{name} is not {MWAA_HOME}/{name}")

    same_files_as_mwaa_home()


dags_folder()
plugins_folder()
requirements_file()
startup_file()
airflow_home()
