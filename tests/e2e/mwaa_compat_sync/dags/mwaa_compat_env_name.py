"""MWAA compatibility suite: AIRFLOW_ENV_NAME read when the DAG file is parsed.

Read at module level, as DAGs written for MWAA do: without the variable the file does not
import, and the DAG never appears. The description records what the parser saw (the
dag-processor's MWAA_AIRFLOW_COMPONENT is MWAA's ``scheduler``); the task compares the name
the worker's parse saw with the task's environment and the name the test expects.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag, get_current_context, task

ENV_NAME = os.environ["AIRFLOW_ENV_NAME"]
PARSED_BY = os.environ.get("MWAA_AIRFLOW_COMPONENT", "<unset>")


@dag(
    dag_id="mwaa_compat_env_name",
    description=f"AIRFLOW_ENV_NAME={ENV_NAME} MWAA_AIRFLOW_COMPONENT={PARSED_BY}",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["mwaa-compat", f"env-{ENV_NAME}"],
)
def env_name() -> None:
    @task
    def compare_the_environment_name() -> str:
        expected = get_current_context()["params"]["environment_name"]
        seen = {"parse time": ENV_NAME, "task": os.environ.get("AIRFLOW_ENV_NAME", "<unset>")}
        wrong = {k: v for k, v in seen.items() if v != expected}
        if wrong:
            raise ValueError(f"AIRFLOW_ENV_NAME is not {expected!r}: {wrong}")
        return ENV_NAME

    compare_the_environment_name()


env_name()
