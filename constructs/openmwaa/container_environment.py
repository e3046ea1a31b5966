"""The plain environment variables of every Airflow container: a pure function of the props.

Secrets never appear here: they are ECS secrets (see `services.py`). The runtime in the
container (`openmwaa.runtime`) derives the rest (database URL, Fernet key, Celery queues) from
these variables and the secrets; docs/runtime.md describes the whole contract.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .runtime import contracts
from .runtime.requirements import REQUIREMENTS_TIMEOUT
from .runtime.startup_steps import STARTUP_SCRIPT_TIMEOUT
from .versions import is_airflow_2

SYNC_ROOT = "/opt/airflow/sync"
"""Where the EFS access point is mounted (read-only) in every Airflow container."""
SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
SECRETS_BACKEND_KWARGS = {
    "connections_prefix": contracts.CONNECTIONS_PREFIX,
    "variables_prefix": contracts.VARIABLES_PREFIX,
}


AUTOSCALER_REACTION_SECONDS = 60
"""The autoscaler runs once a minute and samples the queue every 5 s within the run."""
FARGATE_START_SECONDS = 180
"""Fargate placement and network interface, the image pull and the init container: an
estimate (the one term no limit of ours bounds), not measured here."""
AIRFLOW_BOOT_SECONDS = 60
"""`airflow db check-migrations` and Celery's start until it consumes from SQS."""


def cold_start_seconds() -> int:
    """Worst case, from a queued task to a worker started from zero that consumes it: the
    autoscaler's reaction, the Fargate start, startup.sh and requirements.txt each at their
    time limit (see `runtime.startup_steps` and `runtime.requirements`), and Airflow's boot."""
    return (
        AUTOSCALER_REACTION_SECONDS
        + FARGATE_START_SECONDS
        + STARTUP_SCRIPT_TIMEOUT
        + REQUIREMENTS_TIMEOUT
        + AIRFLOW_BOOT_SECONDS
    )


TASK_QUEUED_TIMEOUT_SECONDS = math.ceil(cold_start_seconds() / 300) * 300
"""`[scheduler] task_queued_timeout`: the worst cold start rounded up to 5 minutes (1,200 s;
Airflow's default of 600 s fails tasks waiting for a worker). docs/configuration.md explains
each term."""


TASK_HEARTBEAT_TIMEOUT_SECONDS = 90
"""`[scheduler] task_instance_heartbeat_timeout` (Airflow 2: `scheduler_zombie_task_threshold`):
how long a running task may go without a heartbeat before the scheduler fails it (a retry if
it has one left). Airflow's default is 300 s. A running task heartbeats every 5 s (Airflow 3's
`[workers] min_heartbeat_interval`, Airflow 2's `job_heartbeat_sec`), so 90 s is 18 missed
heartbeats: far above the longest gap measured under load (docs/operations.md), and with the
scheduler's 10 s detection interval a hard-killed worker's task is failed or retried within
about 100 s."""


API_SERVER_DB_POOL_SIZE = 5
API_SERVER_DB_MAX_OVERFLOW = 40
"""The UI/REST api-server's database pool (Airflow 3): 5 kept open, up to 40 more under load.
Airflow 3.3.2 checks each request's token with synchronous queries on the server's event loop,
while each request in its 40-thread pool holds a connection until the loop closes its
session: with Airflow's 5 + 10, 15 busy requests take every connection, the loop waits for one
it can never get, and the server answers nothing until the 30 s pool timeout (a 500). 45
connections exceed what one server process can hold. Measured with
`benchmarks/bench_api_load.py` (docs/operations.md): 5 + 10 froze in about half the runs at
20 clients, 5 + 40 in none of about 19 runs at 20 to 60 clients. Overflow connections close
when returned, so idle servers still hold 5."""


def api_server_workers(web_cpu: int) -> int:
    """`[api] workers` of the UI/REST api-server: one uvicorn process per whole vCPU of the web
    server task, at least one (a process uses at most one vCPU; each costs about 270 MiB)."""
    return max(1, web_cpu // 1024)


def execution_api_workers(web_cpu: int) -> int:
    """`[api] workers` of the Task Execution API server: one process up to 1 vCPU, two above
    (its requests are short: heartbeats and state changes, no DAG listing)."""
    return 1 if web_cpu <= 1024 else 2


def server_defaults(component: str, airflow_version: str, web_cpu: int) -> dict[str, str]:
    """Tunable defaults of the Airflow 3 servers, sized from the web server task's CPU units:
    the api-server's worker processes and database pool, the execution-api's workers."""
    if is_airflow_2(airflow_version):
        return {}
    if component == contracts.API_SERVER:
        return {
            "AIRFLOW__API__WORKERS": str(api_server_workers(web_cpu)),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": str(API_SERVER_DB_POOL_SIZE),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": str(API_SERVER_DB_MAX_OVERFLOW),
        }
    if component == contracts.EXECUTION_API:
        return {"AIRFLOW__API__WORKERS": str(execution_api_workers(web_cpu))}
    return {}


CELERY_PUBLISH_MAX_RETRIES = 30
"""`[celery] task_publish_max_retries`: how many more times the scheduler tries to send a task
to SQS after a send timed out (`[celery] operation_timeout`, 1 s), once per scheduler loop,
before it fails the try without running it. Airflow's 3 (a few seconds) lets a 20 s broker
outage cost a try, or the task with no retries left (measured in the fault suite,
tests/e2e/test_faults_e2e.py); 30 rides out about a minute without holding the scheduler
loop longer per attempt. A send that timed out may still arrive: the try then has several
messages, and Airflow runs it once (the others are refused as running elsewhere)."""


def heartbeat_timeout_option(airflow_version: str) -> str:
    """The name of the task heartbeat timeout option in this Airflow version."""
    if is_airflow_2(airflow_version):
        return "scheduler.scheduler_zombie_task_threshold"
    return "scheduler.task_instance_heartbeat_timeout"


def parallelism_per_scheduler(max_workers: int, tasks_per_worker: int, schedulers: int) -> int:
    """`[core] parallelism` (per scheduler) so that all schedulers together can keep every slot
    of `max_workers` workers busy, and no more: ceil(max_workers x tasks_per_worker /
    schedulers). No floor at Airflow's 32: slots beyond the workers' capacity would only move
    the backlog from `scheduled` (which waits for free) into `queued` (where
    `task_queued_timeout` fails it)."""
    return math.ceil(max_workers * tasks_per_worker / schedulers)


@dataclass(frozen=True)
class ContainerSettings:
    """What differs between environments (values may be CDK tokens)."""

    environment_name: str
    airflow_version: str
    python_version: str
    region: str
    queue_url: str
    queue_name: str
    execution_api_host: str
    """Where workers and triggerers reach the Task Execution API (Airflow 3): its service's
    Cloud Map name, or `localhost` when it runs in their task (mw1.micro)."""
    task_log_group_arn: str
    task_logging_enabled: bool
    tasks_per_worker: int
    database_name: str
    configuration_options: Mapping[str, str]
    max_workers: int
    """The most workers of the environment and its worker pools together."""
    schedulers: int
    task_protection: bool
    """False on mw1.micro: one task, no autoscaler, no permission to change its protection."""
    web_cpu: int = 1024
    """CPU units of the web server task, which sizes both API servers' worker processes."""
    pool_queues: Mapping[str, str] = field(default_factory=dict)
    """Each worker pool's Celery queue name -> its SQS queue URL."""
    metrics_namespace: str = contracts.MWAA_METRIC_NAMESPACE
    metrics_allow_list: tuple[str, ...] = ()
    """The MWAA metric names Airflow publishes; empty: Airflow's metrics off (no StatsD)."""


SERVER_PORTS: Mapping[str, int] = {
    contracts.API_SERVER: contracts.API_SERVER_PORT,
    contracts.EXECUTION_API: contracts.EXECUTION_API_PORT,
}
"""The port each server component listens on (`OPENMWAA_API_SERVER_PORT` in its container)."""


def option_variable(option: str) -> str:
    """`section.key` -> `AIRFLOW__SECTION__KEY`."""
    section, _, key = option.partition(".")
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def metrics_variable(settings: ContainerSettings, *, relay: bool) -> str | None:
    """`OPENMWAA_METRICS` of an Airflow container (see `contracts.METRICS_VARIABLE`): compact
    JSON with sorted keys and names, so synthesis is deterministic; None when the allow-list
    is empty. `relay` is true on one container per task: it runs the task's metrics relay."""
    if not settings.metrics_allow_list:
        return None
    return json.dumps(
        {
            "environment": settings.environment_name,
            "metrics": sorted(settings.metrics_allow_list),
            "namespace": settings.metrics_namespace,
            "port": contracts.STATSD_PORT,
            "relay": relay,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def container_environment(
    settings: ContainerSettings,
    *,
    component: str,
    log_level: str,
    worker_queue: str = "",
    metrics_relay: bool = False,
) -> dict[str, str]:
    """The plain environment of the `component` container (for a worker pool's worker,
    `worker_queue` is the pool's Celery queue; `metrics_relay` on the one container of its
    task that runs the metrics relay).

    User options come last and win over openmwaa's tunable defaults (worker concurrency,
    log level, parallelism, the default pool, task_queued_timeout, the heartbeat timeout, the
    secrets cache, the API servers' processes and database pool; the
    environment's URL is added later, see `web_environment`); the keys that wire Airflow to
    the environment are refused by validation before this runs, so they never reach here.
    """
    env = {
        contracts.COMPONENT_VARIABLE: component,
        contracts.ENVIRONMENT_NAME_VARIABLE: settings.environment_name,
        contracts.AIRFLOW_VERSION_VARIABLE: settings.airflow_version,
        contracts.PYTHON_VERSION_VARIABLE: settings.python_version,
        contracts.SYNC_ROOT_VARIABLE: SYNC_ROOT,
        contracts.DB_NAME_VARIABLE: settings.database_name,
        contracts.QUEUE_URL_VARIABLE: settings.queue_url,
        contracts.QUEUE_NAME_VARIABLE: settings.queue_name,
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
    env.update(sized_defaults(settings))
    env.update(server_defaults(component, settings.airflow_version, settings.web_cpu))
    if settings.pool_queues:
        env[contracts.POOL_QUEUES_VARIABLE] = ",".join(
            f"{name}={url}" for name, url in sorted(settings.pool_queues.items())
        )
    if worker_queue:
        env[contracts.WORKER_QUEUE_VARIABLE] = worker_queue
    if component in SERVER_PORTS:
        env[contracts.API_SERVER_PORT_VARIABLE] = str(SERVER_PORTS[component])
    if component == contracts.WORKER:
        env[contracts.TASK_PROTECTION_VARIABLE] = "on" if settings.task_protection else "off"
    metrics = metrics_variable(settings, relay=metrics_relay)
    if metrics is not None:
        env[contracts.METRICS_VARIABLE] = metrics
    if not is_airflow_2(settings.airflow_version):
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
            f"http://{settings.execution_api_host}:{contracts.EXECUTION_API_PORT}/execution/"
        )
    for option, value in sorted(settings.configuration_options.items()):
        env[option_variable(option)] = value
    return env


def sized_defaults(settings: ContainerSettings) -> dict[str, str]:
    """Tunable defaults sized from the environment (users may override each):
    `[core] parallelism` and the default pool's slots, sized to `max_workers` workers;
    `[scheduler] task_queued_timeout`, sized to a worker's cold start; the task heartbeat
    timeout, short enough to notice a dead worker within two minutes; `[celery]
    task_publish_max_retries`, so a broker outage of a minute costs no try; `[secrets] use_cache`,
    fewer paid Secrets Manager calls while parsing DAGs."""
    return {
        "AIRFLOW__CORE__PARALLELISM": str(
            parallelism_per_scheduler(
                settings.max_workers, settings.tasks_per_worker, settings.schedulers
            )
        ),
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(
            settings.max_workers * settings.tasks_per_worker
        ),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(TASK_QUEUED_TIMEOUT_SECONDS),
        option_variable(heartbeat_timeout_option(settings.airflow_version)): str(
            TASK_HEARTBEAT_TIMEOUT_SECONDS
        ),
        "AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES": str(CELERY_PUBLISH_MAX_RETRIES),
        "AIRFLOW__SECRETS__USE_CACHE": "True",
    }


def web_environment(
    *, airflow_version: str, url: str, configuration_options: Mapping[str, str]
) -> dict[str, str]:
    """What every Airflow container needs to know about the load balancer in front of it,
    minus the options the user set (theirs win).

    The environment's URL (`[api] base_url`; Airflow 2 `[webserver] base_url`): links in
    emails and callbacks, redirects after login. Airflow 2's webserver trusts the load
    balancer's X-Forwarded-* headers (`[webserver] enable_proxy_fix`; Airflow 3's api-server
    does with `--proxy-headers`, which the runtime adds). Under HTTPS the session cookie is
    Secure (`[fab] cookie_secure`, Airflow 2 `[webserver] cookie_secure`); Airflow 3 marks
    its token cookie Secure by itself from the forwarded scheme.

    The URL is the web access construct's, built after the services (its load balancer's
    DNS name is a GetAtt, which depends on neither the services nor their task definitions),
    so the services add this to their containers afterwards.
    """
    https = url.startswith("https://")
    if is_airflow_2(airflow_version):
        options = {"webserver.base_url": url, "webserver.enable_proxy_fix": "True"}
        if https:
            options["webserver.cookie_secure"] = "True"
    else:
        options = {"api.base_url": url}
        if https:
            options["fab.cookie_secure"] = "True"
    return {
        option_variable(option): value
        for option, value in options.items()
        if option not in configuration_options
    }
