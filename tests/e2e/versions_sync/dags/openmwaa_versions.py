"""The DAG every booted Airflow version runs: on Airflow 2 and 3 alike, it proves startup.sh's
export and requirements.txt's package reached the Celery worker's task."""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(
    dag_id="openmwaa_versions",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
)
def openmwaa_versions() -> None:
    @task
    def report() -> str:
        import airflow
        import cowsay

        print("OPENMWAA_VERSIONS airflow=" + airflow.__version__)
        print("OPENMWAA_VERSIONS requirement=" + cowsay.__name__)
        print("STARTUP_SH_MARK=" + os.environ.get("STARTUP_SH_MARK", "<unset>"))
        return airflow.__version__

    report()


openmwaa_versions()
