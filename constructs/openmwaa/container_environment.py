"""The plain environment variables of every Airflow container: a pure function of the props.

Secrets never appear here: they are ECS secrets (see `services.py`). The runtime in the
container (`openmwaa.runtime`) derives the rest (database URL, Fernet key, Celery queues) from
these variables and the secrets; docs/runtime.md describes the whole contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .versions import is_airflow_2

SYNC_ROOT = "/opt/airflow/sync"
"""Where the EFS access point is mounted (read-only) in every Airflow container."""
API_SERVER_PORT = 8080
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
SECRETS_BACKEND_KWARGS = {
    "connections_prefix": "airflow/connections",
    "variables_prefix": "airflow/variables",
}


@dataclass(frozen=True)
class ContainerSettings:
    """What differs between environments (values may be CDK tokens)."""

    environment_name: str
    airflow_version: str
    python_version: str
    region: str
    queue_url: str
    queue_name: str
    api_server_host: str
    task_log_group_arn: str
    task_logging_enabled: bool
    tasks_per_worker: int
    database_name: str
    configuration_options: Mapping[str, str]


def option_variable(option: str) -> str:
    """`section.key` -> `AIRFLOW__SECTION__KEY`."""
    section, _, key = option.partition(".")
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def container_environment(
    settings: ContainerSettings, *, component: str, log_level: str
) -> dict[str, str]:
    """The plain environment of the `component` container.

    User options come last and win over openmwaa's tunable defaults (worker concurrency,
    log level); the keys that wire Airflow to the environment are refused by validation
    before this runs, so they never reach here.
    """
    env = {
        "OPENMWAA_COMPONENT": component,
        "OPENMWAA_ENVIRONMENT_NAME": settings.environment_name,
        "OPENMWAA_AIRFLOW_VERSION": settings.airflow_version,
        "OPENMWAA_PYTHON_VERSION": settings.python_version,
        "OPENMWAA_SYNC_ROOT": SYNC_ROOT,
        "OPENMWAA_API_SERVER_PORT": str(API_SERVER_PORT),
        "OPENMWAA_DB_NAME": settings.database_name,
        "OPENMWAA_CELERY_QUEUE_URL": settings.queue_url,
        "OPENMWAA_CELERY_QUEUE_NAME": settings.queue_name,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_REGION": settings.region,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": f"{SYNC_ROOT}/dags",
        "AIRFLOW__CORE__PLUGINS_FOLDER": f"{SYNC_ROOT}/plugins",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CELERY__BROKER_URL": "sqs://",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(settings.tasks_per_worker),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION": settings.region,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": settings.queue_name,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
        "AIRFLOW__LOGGING__REMOTE_LOGGING": str(settings.task_logging_enabled),
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"cloudwatch://{settings.task_log_group_arn}",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
        "AIRFLOW__SECRETS__BACKEND": SECRETS_BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(SECRETS_BACKEND_KWARGS, sort_keys=True),
    }
    if not is_airflow_2(settings.airflow_version):
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
            f"http://{settings.api_server_host}:{API_SERVER_PORT}/execution/"
        )
    for option, value in sorted(settings.configuration_options.items()):
        env[option_variable(option)] = value
    return env
