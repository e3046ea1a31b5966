"""MWAA compatibility suite, negative control: the same kinds of checks as the convention
DAGs, against a path and a variable that neither MWAA nor openmwaa provides. Both tasks must
fail; if they succeed, the checks cannot tell a missing convention from a present one."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(
    dag_id="mwaa_compat_negative_control",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["mwaa-compat"],
)
def negative_control() -> None:
    BashOperator(
        task_id="missing_path",
        bash_command=(
            "set -eu; cd /usr/local/airflow/not_an_mwaa_folder; grep -qx MWAA_COMPAT marker.txt"
        ),
    )

    @task
    def missing_variable() -> str:
        return os.environ["MWAA_COMPAT_NOT_A_CONVENTION"]

    missing_variable()


negative_control()
