"""MWAA compatibility suite: Variables and Connections from AWS Secrets Manager, under
``airflow/variables/<name>`` and ``airflow/connections/<name>`` (MWAA's documented set-up;
the test creates both secrets before the run)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import BaseHook, Variable, dag, task

VARIABLE = "mwaa_compat_variable"
VARIABLE_VALUE = "MWAA_COMPAT_VARIABLE_FROM_SECRETS_MANAGER"
CONNECTION = "mwaa_compat_connection"
CONNECTION_FIELDS = {
    "conn_type": "postgres",
    "host": "warehouse.mwaa-compat.internal",
    "login": "etl",
    "password": "p@ss/word",
    "schema": "analytics",
    "port": 5439,
}


@dag(
    dag_id="mwaa_compat_secrets_manager",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["mwaa-compat"],
)
def secrets_manager() -> None:
    @task
    def variable_from_secrets_manager() -> None:
        value = Variable.get(VARIABLE)
        if value != VARIABLE_VALUE:
            raise ValueError(f"Variable {VARIABLE} is {value!r}")

    @task
    def connection_from_secrets_manager() -> None:
        connection = BaseHook.get_connection(CONNECTION)
        wrong = {
            name: getattr(connection, name)
            for name, value in CONNECTION_FIELDS.items()
            if getattr(connection, name) != value
        }
        if wrong:
            raise ValueError(f"Connection {CONNECTION} differs: {sorted(wrong)}")

    variable_from_secrets_manager()
    connection_from_secrets_manager()


secrets_manager()
