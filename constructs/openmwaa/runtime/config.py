"""Airflow configuration derived from the container's environment: pure functions, no I/O.

The ECS task definition gives each container plain variables and ECS secrets (see
docs/runtime.md). From them this module computes the ``AIRFLOW__SECTION__KEY`` variables
Airflow reads: the metadata database URL, the Fernet key, the Celery broker's predefined queue,
and openmwaa's defaults. Standard library only: it runs inside the stock Airflow image.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from . import contracts, metric_names, mwaa_conventions
from .contracts import API_SERVER, DAG_PROCESSOR, EXECUTION_API, SCHEDULER, TRIGGERER, WORKER

# Kept importable from here for the construct, which is moving to .contracts.
from .contracts import API_SERVER_PORT as API_SERVER_PORT
from .contracts import COMPONENTS as COMPONENTS
from .contracts import EXECUTION_API_PORT as EXECUTION_API_PORT

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

PROTECTED_OPTIONS: frozenset[str] = frozenset(
    {
        "api.secret_key",
        "api_auth.jwt_secret",
        "celery.broker_url",
        "celery.celery_config_options",
        "celery.result_backend",
        "celery.worker_enable_remote_control",
        "celery_broker_transport_options.is_secure",
        "celery_broker_transport_options.predefined_queues",
        "celery_broker_transport_options.region",
        "core.dags_folder",
        "core.execution_api_server_url",
        "core.executor",
        "core.fernet_key",
        "core.plugins_folder",
        "database.sql_alchemy_conn",
        "fab.config_file",
        "logging.remote_base_log_folder",
        "logging.remote_log_conn_id",
        "logging.remote_logging",
        "metrics.legacy_names_on",
        "metrics.stat_name_handler",
        "metrics.statsd_custom_client_path",
        "metrics.statsd_datadog_enabled",
        "metrics.statsd_disabled_tags",
        "metrics.statsd_host",
        "metrics.statsd_influxdb_enabled",
        "metrics.statsd_on",
        "metrics.statsd_port",
        "metrics.statsd_prefix",
        "metrics.timer_unit_consistency",
        "operators.default_queue",
        "scheduler.standalone_dag_processor",
        "webserver.config_file",
        "webserver.secret_key",
    }
)
"""Airflow options (``section.key``) openmwaa sets and users may not override.

They wire Airflow to the environment's database, queue, secrets, log groups and file system;
a different value breaks the environment (``config_file``: the runtime writes the sign-in's
``webserver_config.py``, :mod:`.sign_in`; ``metrics.*``: Airflow's StatsD goes to the metrics
relay, in the form it reads, :func:`metrics_settings`). Their ``_cmd`` and ``_secret`` variants
are protected too (see :func:`is_protected_option`). ``metrics.metrics_allow_list`` and
``metrics_block_list`` stay the user's, as on MWAA.
"""

FAB_API_AUTH_BACKENDS = ",".join(
    f"airflow.providers.fab.auth_manager.api.auth.backend.{name}"
    for name in ("basic_auth", "session")
)
"""Airflow 2's REST API authentication: the FAB provider's basic auth, then the UI's session."""

OPINIONATED_DEFAULTS: Mapping[str, str] = {
    "core.auth_manager": FAB_AUTH_MANAGER,
    "logging.delete_local_logs": "True",
    "celery_broker_transport_options.visibility_timeout": "43200",
    "dag_processor.refresh_interval": "30",
}
"""Options openmwaa sets unless the user (or startup.sh) sets them (Airflow 3)."""

OPINIONATED_DEFAULTS_AIRFLOW2: Mapping[str, str] = {
    "core.auth_manager": FAB_AUTH_MANAGER,
    "logging.delete_local_logs": "True",
    "celery_broker_transport_options.visibility_timeout": "43200",
    "scheduler.dag_dir_list_interval": "30",
    "api.auth_backends": FAB_API_AUTH_BACKENDS,
}
"""Options openmwaa sets unless the user (or startup.sh) sets them (Airflow 2). Basic auth is on
for the REST API, as the API access Lambda's machine users and the break-glass admin need it:
single sign-on users have no password to send."""

API_SERVER_DEFAULTS: Mapping[str, str] = {"FORWARDED_ALLOW_IPS": "*"}
"""Variables of the Airflow 3 api-server, unless already set. It runs with ``--proxy-headers``
(see :func:`airflow_command`), and uvicorn then trusts X-Forwarded-For/-Proto only from the
addresses in ``FORWARDED_ALLOW_IPS`` (its default is 127.0.0.1). The ALB's addresses are not
known in advance; only the ALB and the environment's own security group reach port 8080, so
trusting every forwarder is safe (docs/runtime.md)."""

RAW_SECRET_VARIABLES = (
    contracts.DB_SECRET_VARIABLE,
    contracts.FERNET_SEED_VARIABLE,
    contracts.ADMIN_SECRET_VARIABLE,
    contracts.MACHINE_KEY_VARIABLE,
)
"""ECS secrets the bootstrap consumes; removed from the environment Airflow and DAGs see."""

_ENV_NAME = re.compile(r"^AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)$")


class ConfigError(Exception):
    """The container's environment cannot configure Airflow. The message names the variable,
    never a secret value."""


def env_name(option: str) -> str:
    """``section.key`` -> ``AIRFLOW__SECTION__KEY``."""
    section, _, key = option.partition(".")
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def option_name(name: str) -> str | None:
    """``AIRFLOW__SECTION__KEY`` -> ``section.key`` (lower case); None for other names."""
    match = _ENV_NAME.match(name.upper())
    if not match:
        return None
    return f"{match.group(1).lower()}.{match.group(2).lower()}"


def is_protected_option(name: str) -> bool:
    """True if ``name`` (``section.key`` or ``AIRFLOW__SECTION__KEY``, any case, with or
    without a ``_cmd``/``_secret`` suffix) is an option users may not override."""
    option = option_name(name) if name.upper().startswith("AIRFLOW__") else name.lower()
    if option is None:
        return False
    for suffix in ("_cmd", "_secret"):
        if option.endswith(suffix) and option[: -len(suffix)] in PROTECTED_OPTIONS:
            return True
    return option in PROTECTED_OPTIONS


def airflow_major(version: str) -> int:
    """The major version of an Airflow version string such as ``3.3.2``."""
    head = version.strip().split(".", 1)[0]
    if not head.isdigit():
        raise ConfigError(f"OPENMWAA_AIRFLOW_VERSION is not a version: {version!r}")
    return int(head)


@dataclass(frozen=True)
class DatabaseSecret:
    """The fields of the metadata database's Secrets Manager secret that Airflow needs."""

    username: str
    password: str
    host: str
    port: int
    dbname: str


def parse_db_secret(raw: str, default_dbname: str | None = None) -> DatabaseSecret:
    """Parse the JSON of the Aurora credentials secret (``OPENMWAA_DB_SECRET``).

    Aurora's secret attachment writes username, password, host, port and engine; ``dbname``
    only when known, so ``default_dbname`` (``OPENMWAA_DB_NAME``) fills it in.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError("OPENMWAA_DB_SECRET is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError("OPENMWAA_DB_SECRET is not a JSON object")
    missing = [k for k in ("username", "password", "host") if not data.get(k)]
    if missing:
        raise ConfigError(f"OPENMWAA_DB_SECRET lacks {', '.join(missing)}")
    try:
        port = int(data.get("port") or 5432)
    except (TypeError, ValueError):
        raise ConfigError("OPENMWAA_DB_SECRET has a port that is not a number") from None
    dbname = data.get("dbname") or default_dbname
    if not dbname:
        raise ConfigError("OPENMWAA_DB_SECRET has no dbname and OPENMWAA_DB_NAME is not set")
    return DatabaseSecret(
        username=str(data["username"]),
        password=str(data["password"]),
        host=str(data["host"]),
        port=port,
        dbname=str(dbname),
    )


def sql_alchemy_conn(db: DatabaseSecret) -> str:
    """SQLAlchemy URL of the metadata database (psycopg2 driver, credentials URL-quoted)."""
    user = quote(db.username, safe="")
    password = quote(db.password, safe="")
    host = f"[{db.host}]" if ":" in db.host else db.host
    return f"postgresql+psycopg2://{user}:{password}@{host}:{db.port}/{quote(db.dbname, safe='')}"


def celery_result_backend(db: DatabaseSecret) -> str:
    """Celery's database result backend URL on the metadata database."""
    return "db+" + sql_alchemy_conn(db)


def fernet_key(seed: str) -> str:
    """Airflow's Fernet key derived from the random seed: url-safe base64 of SHA-256."""
    if len(seed) < 32:
        raise ConfigError("OPENMWAA_FERNET_SEED is shorter than 32 characters")
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def parse_pool_queues(raw: str) -> dict[str, str]:
    """``name=url,name=url`` -> ``{name: url}``; empty for an empty value."""
    queues: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, url = pair.partition("=")
        if not sep or not name or not url.startswith(("https://", "http://")):
            raise ConfigError(f"{contracts.POOL_QUEUES_VARIABLE}: {pair!r} is not name=<queue URL>")
        queues[name] = url
    return queues


def predefined_queues(
    queue_name: str, queue_url: str, pool_queues: Mapping[str, str] | None = None
) -> str:
    """JSON of kombu's SQS ``predefined_queues``: the environment's queue, also as "default",
    and each worker pool's queue under its Celery queue name.

    A predefined queue needs no sqs:ListQueues/CreateQueue. "default" (Airflow's own default
    queue name) maps to the environment's queue so a DAG that names it still runs.
    """
    queues = {name: {"url": url} for name, url in (pool_queues or {}).items()}
    queues[queue_name] = {"url": queue_url}
    if queue_name != "default":
        queues["default"] = {"url": queue_url}
    return json.dumps(queues, sort_keys=True)


@dataclass(frozen=True)
class AdminUser:
    """The UI/API admin user from ``OPENMWAA_ADMIN_SECRET``."""

    username: str
    password: str


def parse_admin_secret(raw: str) -> AdminUser:
    """Parse ``{"username": ..., "password": ...}``."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError("OPENMWAA_ADMIN_SECRET is not valid JSON") from None
    if not isinstance(data, dict) or not data.get("username") or not data.get("password"):
        raise ConfigError("OPENMWAA_ADMIN_SECRET needs a username and a password")
    return AdminUser(username=str(data["username"]), password=str(data["password"]))


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def derived_settings(env: Mapping[str, str], major: int) -> dict[str, str]:
    """Protected ``AIRFLOW__*`` variables computed from the secrets and the queue variables."""
    db = parse_db_secret(
        _required(env, contracts.DB_SECRET_VARIABLE), env.get(contracts.DB_NAME_VARIABLE)
    )
    queue_url = _required(env, contracts.QUEUE_URL_VARIABLE)
    queue_name = _required(env, contracts.QUEUE_NAME_VARIABLE)
    settings = {
        "database.sql_alchemy_conn": sql_alchemy_conn(db),
        "celery.result_backend": celery_result_backend(db),
        "core.fernet_key": fernet_key(_required(env, contracts.FERNET_SEED_VARIABLE)),
        "celery_broker_transport_options.predefined_queues": predefined_queues(
            queue_name, queue_url, parse_pool_queues(env.get(contracts.POOL_QUEUES_VARIABLE, ""))
        ),
        "celery_broker_transport_options.is_secure": str(queue_url.startswith("https://")),
        "operators.default_queue": queue_name,
        # SQS has no broadcast: Celery's remote control (pidbox) cannot work over it.
        "celery.worker_enable_remote_control": "False",
    }
    _required(env, "AIRFLOW__API_AUTH__JWT_SECRET")
    secret_key = _required(env, "AIRFLOW__API__SECRET_KEY")
    if major < 3:
        settings["webserver.secret_key"] = secret_key
        settings["scheduler.standalone_dag_processor"] = "True"
    return {env_name(k): v for k, v in settings.items()}


def default_settings(env: Mapping[str, str], major: int) -> dict[str, str]:
    """openmwaa's defaults for the options the environment does not set."""
    defaults = OPINIONATED_DEFAULTS if major >= 3 else OPINIONATED_DEFAULTS_AIRFLOW2
    names = {env_name(k): v for k, v in defaults.items()}
    if major >= 3 and env.get(contracts.COMPONENT_VARIABLE) == API_SERVER:
        names.update(API_SERVER_DEFAULTS)
    return {k: v for k, v in names.items() if k not in env}


STATSD_PREFIX = "airflow"
"""Airflow's StatsD prefix (its default, and MWAA's): the relay strips it."""

USER_METRICS_LISTS = ("metrics.metrics_allow_list", "metrics.metrics_block_list")
"""Airflow's own filters; when the user sets either, the runtime sets neither."""


@dataclass(frozen=True)
class MetricsConfig:
    """``OPENMWAA_METRICS``: where Airflow's metrics go and which are published."""

    namespace: str
    environment: str
    metrics: tuple[str, ...]
    port: int
    relay: bool


def parse_metrics(raw: str | None) -> MetricsConfig | None:
    """Parse ``OPENMWAA_METRICS``; None when it is unset or empty (metrics off)."""
    if not raw:
        return None
    name = contracts.METRICS_VARIABLE
    try:
        data = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{name} is not a JSON object")
    metrics, port = data.get("metrics"), data.get("port")
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{name}: metrics is not a list of metric names")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"{name}: port is not a port number: {port!r}")
    namespace, environment = data.get("namespace"), data.get("environment")
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError(f"{name}: namespace is not set")
    if not isinstance(environment, str) or not environment:
        raise ConfigError(f"{name}: environment is not set")
    return MetricsConfig(namespace, environment, tuple(metrics), port, data.get("relay") is True)


def airflow_allow_list(airflow_names: Iterable[str]) -> str:
    """Airflow's ``metrics_allow_list`` letting exactly these StatsD names through, with their
    tags (``name,tag=value``) and without the longer names they start (the legacy
    ``executor.open_slots.CeleryExecutor``, ``dagrun.duration.success.<dag_id>``).

    Regular expressions without commas and lookarounds, so Airflow 3 (``re``) and Airflow 2
    (``re2``, with ``metrics_use_pattern_match``) read them alike; matched against the name
    in lower case without the prefix.
    """
    names = sorted({name.lower() for name in airflow_names})
    return ",".join("^" + name.replace(".", "\\.") + "($|[^a-z0-9_.-])" for name in names)


def metrics_settings(env: Mapping[str, str], major: int) -> dict[str, str]:
    """The ``[metrics]`` variables for ``OPENMWAA_METRICS``: StatsD on towards the relay on
    127.0.0.1, tags in the name (InfluxDB style, which the relay reads), timers in
    milliseconds, Airflow 3's legacy names (the ids inside the name) off, and Airflow's
    allow-list set to the allowed metrics unless the user set an allow or block list.
    Without ``OPENMWAA_METRICS`` (or without a known metric in it): nothing, StatsD stays off
    (Airflow's default)."""
    metrics = parse_metrics(env.get(contracts.METRICS_VARIABLE))
    rules = metric_names.rules_for(metrics.metrics) if metrics else ()
    if metrics is None or not rules:
        return {}
    settings = {
        "metrics.statsd_on": "True",
        "metrics.statsd_host": "127.0.0.1",
        "metrics.statsd_port": str(metrics.port),
        "metrics.statsd_prefix": STATSD_PREFIX,
        "metrics.statsd_influxdb_enabled": "True",
        "metrics.statsd_datadog_enabled": "False",
        # Airflow's default: the ids of jobs and runs would make every series new.
        "metrics.statsd_disabled_tags": "job_id,run_id",
    }
    if major >= 3:
        settings["metrics.legacy_names_on"] = "False"
    else:
        settings["metrics.timer_unit_consistency"] = "True"
    if not any(env.get(env_name(option)) for option in USER_METRICS_LISTS):
        settings["metrics.metrics_allow_list"] = airflow_allow_list(r.airflow for r in rules)
        if major < 3:
            settings["metrics.metrics_use_pattern_match"] = "True"
    return {env_name(k): v for k, v in settings.items()}


def task_protection_enabled(env: Mapping[str, str]) -> bool:
    """False when ``OPENMWAA_TASK_PROTECTION`` says ``off`` (or ``false``, ``0``, ``no``)."""
    value = env.get(contracts.TASK_PROTECTION_VARIABLE, "on").strip().lower()
    return value not in ("off", "false", "0", "no")


def airflow_environment(env: Mapping[str, str], major: int) -> dict[str, str]:
    """The environment to run Airflow with: ``env`` plus derived and default settings, minus
    the raw secrets. Raises :class:`ConfigError` if a required variable is missing."""
    result = dict(env)
    result.update(default_settings(env, major))
    result.update(derived_settings(env, major))
    result.update(metrics_settings(env, major))
    for name in RAW_SECRET_VARIABLES:
        result.pop(name, None)
    return result


def filter_startup_exports(
    before: Mapping[str, str], after: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """What a sourced startup.sh may change in the environment.

    Returns ``(changes, removed, rejected)``: variables it added or changed, variables it
    unset, and the names it may not touch (protected Airflow options, and the names MWAA
    reserves: :func:`.mwaa_conventions.is_reserved`), which are ignored.
    """
    changes: dict[str, str] = {}
    removed: list[str] = []
    rejected: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new or name in _SHELL_NOISE:
            continue
        if _reserved(name):
            rejected.append(name)
        elif new is None:
            removed.append(name)
        else:
            changes[name] = new
    return changes, removed, rejected


_SHELL_NOISE = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"})


def _reserved(name: str) -> bool:
    return mwaa_conventions.is_reserved(name) or is_protected_option(name)


def airflow_command(component: str, major: int, api_port: str, worker_queue: str = "") -> list[str]:
    """The Airflow CLI command of a component; a pool's worker consumes `worker_queue` only."""
    if component == SCHEDULER:
        return ["airflow", "scheduler"]
    if component == DAG_PROCESSOR:
        return ["airflow", "dag-processor"]
    if component == TRIGGERER:
        return ["airflow", "triggerer"]
    if component == API_SERVER:
        if major < 3:
            return ["airflow", "webserver", "--port", api_port]
        # The UI and the REST API only: the Task Execution API runs apart (execution-api).
        # Behind the load balancer: take the client's scheme and address from its
        # X-Forwarded-* headers (uvicorn's proxy headers; trusted per FORWARDED_ALLOW_IPS).
        return ["airflow", "api-server", "--apps", "core", "--port", api_port, "--proxy-headers"]
    if component == EXECUTION_API:
        if major < 3:
            raise ConfigError("OPENMWAA_COMPONENT execution-api needs Airflow 3")
        return ["airflow", "api-server", "--apps", "execution", "--port", api_port]
    if component == WORKER:
        if worker_queue:
            return ["airflow", "celery", "worker", "--queues", worker_queue]
        return ["airflow", "celery", "worker"]
    raise ConfigError(f"OPENMWAA_COMPONENT must be one of {', '.join(COMPONENTS)}: {component!r}")


def requirements_have_constraints(text: str) -> bool:
    """True if a requirements file names its own constraints (``-c``/``--constraint``).

    A commented-out constraint line counts too: it is how a user opts out of the default
    constraints without supplying a file.
    """
    return any(re.search(r"(^|\s|#)(-c\s|--constraint[\s=])", line) for line in text.splitlines())


def requirements_are_empty(text: str) -> bool:
    """True if a requirements file has no line other than blanks and comments."""
    return all(not line.strip() or line.strip().startswith("#") for line in text.splitlines())


def default_constraints_url(airflow_version: str, python_version: str) -> str:
    """Airflow's published constraints for a version and Python line."""
    return (
        "https://raw.githubusercontent.com/apache/airflow/"
        f"constraints-{airflow_version}/constraints-{python_version}.txt"
    )


def local_constraints(installed: Mapping[str, str]) -> str:
    """Constraints pinning every installed distribution (name -> version) at its version.

    The fallback when no published constraints file can be read: user requirements may add
    packages but never move one Airflow already runs on.
    """
    lines = [f"{name}=={version}" for name, version in sorted(installed.items())]
    return "\n".join(lines) + "\n"
