"""The DAG of the sign-in end-to-end test: a Viewer may see it, an Op may trigger it."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task


@dag(
    dag_id="openmwaa_sign_in",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["sign-in-e2e"],
)
def openmwaa_sign_in() -> None:
    @task
    def hello() -> str:
        return "signed in"

    hello()


openmwaa_sign_in()
