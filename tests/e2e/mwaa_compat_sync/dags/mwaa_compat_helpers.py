"""MWAA compatibility suite: a helper module imported from the DAGs folder."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task
from mwaa_compat_lib.helpers import MARKER, shout


@dag(
    dag_id="mwaa_compat_helper_module",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["mwaa-compat"],
)
def helper_module() -> None:
    @task
    def call_the_helper() -> str:
        value = shout("  ada ")
        if value != f"{MARKER} ADA":
            raise ValueError(f"helper returned {value!r}")
        return value

    call_the_helper()


helper_module()
