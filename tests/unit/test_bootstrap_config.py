"""The runtime's configuration rules (openmwaa.runtime.config): pure functions."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from cryptography.fernet import Fernet

from openmwaa.runtime import config
from openmwaa.runtime.config import ConfigError

DB_SECRET = {
    "username": "airflow",
    "password": "p@ss:w/rd%?#",
    "host": "db.cluster-x.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "engine": "postgres",
    "dbClusterIdentifier": "openmwaa-metadata",
}
SEED = "s" * 48


def contract_env(**overrides: str) -> dict[str, str]:
    """The variables the construct and ECS give every container."""
    env = {
        "OPENMWAA_COMPONENT": "scheduler",
        "OPENMWAA_DB_SECRET": json.dumps(DB_SECRET),
        "OPENMWAA_DB_NAME": "airflow",
        "OPENMWAA_FERNET_SEED": SEED,
        "OPENMWAA_CELERY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q1",
        "OPENMWAA_CELERY_QUEUE_NAME": "q1",
        "OPENMWAA_ADMIN_SECRET": json.dumps({"username": "admin", "password": "pw"}),
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt",
        "AIRFLOW__API__SECRET_KEY": "key",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    }
    env.update(overrides)
    return env


def test_sql_alchemy_conn_quotes_credentials() -> None:
    db = config.parse_db_secret(json.dumps(DB_SECRET), "airflow")

    url = urlsplit(config.sql_alchemy_conn(db))

    assert url.scheme == "postgresql+psycopg2"
    assert unquote(url.username or "") == "airflow"
    assert unquote(url.password or "") == DB_SECRET["password"]
    assert url.hostname == DB_SECRET["host"]
    assert url.port == 5432
    assert url.path == "/airflow"


def test_result_backend_is_the_database_with_the_db_prefix() -> None:
    db = config.parse_db_secret(json.dumps(DB_SECRET), "airflow")

    assert config.celery_result_backend(db) == "db+" + config.sql_alchemy_conn(db)


def test_db_secret_dbname_wins_over_the_default() -> None:
    db = config.parse_db_secret(json.dumps({**DB_SECRET, "dbname": "meta"}), "airflow")

    assert db.dbname == "meta"


def test_db_secret_port_may_be_a_string() -> None:
    db = config.parse_db_secret(json.dumps({**DB_SECRET, "port": "6543"}), "airflow")

    assert db.port == 6543


def test_fails_when_db_secret_has_no_dbname_and_no_default() -> None:
    with pytest.raises(ConfigError, match="OPENMWAA_DB_NAME"):
        config.parse_db_secret(json.dumps(DB_SECRET), None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"username": "u", "host": "h"}), "lacks password"),
        (json.dumps({**DB_SECRET, "port": "x"}), "port"),
    ],
)
def test_fails_when_db_secret_is_invalid(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.parse_db_secret(raw, "airflow")


def test_db_secret_errors_never_show_the_password() -> None:
    raw = json.dumps({**DB_SECRET, "port": "x"})

    with pytest.raises(ConfigError) as error:
        config.parse_db_secret(raw, "airflow")

    assert DB_SECRET["password"] not in str(error.value)


def test_fernet_key_is_a_valid_fernet_key_derived_from_the_seed() -> None:
    key = config.fernet_key(SEED)

    Fernet(key.encode())  # raises if not 32 url-safe base64 bytes
    # Pinned: a different derivation in a new release could not decrypt what Airflow stored.
    assert key == "fiXpZdoNDUj-AdeTribcG7LNOUUFfGf8DThUG2buNQc="
    assert key != config.fernet_key("t" * 48)


def test_fails_when_fernet_seed_is_short() -> None:
    with pytest.raises(ConfigError, match="OPENMWAA_FERNET_SEED"):
        config.fernet_key("short")


def test_predefined_queues_map_the_queue_and_default_to_the_url() -> None:
    queues = json.loads(config.predefined_queues("q1", "https://sqs/1/q1"))

    assert queues == {"q1": {"url": "https://sqs/1/q1"}, "default": {"url": "https://sqs/1/q1"}}


def test_airflow_environment_derives_the_protected_settings() -> None:
    env = config.airflow_environment(contract_env(), major=3)

    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__FERNET_KEY"] == config.fernet_key(SEED)
    queues = json.loads(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES"])
    assert queues["q1"]["url"].endswith("/q1")
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__IS_SECURE"] == "True"
    assert env["AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL"] == "False"
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "q1"


def test_airflow_environment_drops_the_raw_secrets() -> None:
    env = config.airflow_environment(contract_env(), major=3)

    for name in config.RAW_SECRET_VARIABLES:
        assert name not in env


def test_airflow_environment_sets_defaults_only_where_unset() -> None:
    env = config.airflow_environment(
        contract_env(AIRFLOW__LOGGING__DELETE_LOCAL_LOGS="False"), major=3
    )

    assert env["AIRFLOW__LOGGING__DELETE_LOCAL_LOGS"] == "False"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == config.FAB_AUTH_MANAGER
    assert env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] == "30"


def test_airflow_environment_overrides_protected_values() -> None:
    env = config.airflow_environment(
        contract_env(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite://"), major=3
    )

    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def test_api_server_trusts_the_forwarded_headers_of_the_load_balancer() -> None:
    env = config.airflow_environment(contract_env(OPENMWAA_COMPONENT="api-server"), major=3)
    assert env["FORWARDED_ALLOW_IPS"] == "*"
    # a value from the task definition or startup.sh wins
    env = config.airflow_environment(
        contract_env(OPENMWAA_COMPONENT="api-server", FORWARDED_ALLOW_IPS="10.0.0.0/8"), major=3
    )
    assert env["FORWARDED_ALLOW_IPS"] == "10.0.0.0/8"


@pytest.mark.parametrize(("component", "major"), [("scheduler", 3), ("api-server", 2)])
def test_only_the_airflow_3_api_server_trusts_forwarded_headers(component: str, major: int) -> None:
    env = config.airflow_environment(contract_env(OPENMWAA_COMPONENT=component), major=major)
    assert "FORWARDED_ALLOW_IPS" not in env


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("on", True), ("off", False), ("OFF", False), ("false", False)],
)
def test_task_protection_switch(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"OPENMWAA_TASK_PROTECTION": value}
    assert config.task_protection_enabled(env) is expected


def test_airflow_environment_for_airflow_2_sets_the_webserver_secret_key() -> None:
    env = config.airflow_environment(contract_env(), major=2)

    assert env["AIRFLOW__WEBSERVER__SECRET_KEY"] == "key"
    assert env["AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR"] == "True"
    assert env["AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL"] == "30"


def test_plain_http_queue_url_is_not_secure() -> None:
    env = config.airflow_environment(
        contract_env(OPENMWAA_CELERY_QUEUE_URL="http://127.0.0.1:5000/1/q1"), major=3
    )

    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__IS_SECURE"] == "False"


@pytest.mark.parametrize(
    "missing",
    [
        "OPENMWAA_DB_SECRET",
        "OPENMWAA_FERNET_SEED",
        "OPENMWAA_CELERY_QUEUE_URL",
        "OPENMWAA_CELERY_QUEUE_NAME",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
    ],
)
def test_fails_when_a_required_variable_is_missing(missing: str) -> None:
    env = contract_env()
    del env[missing]

    with pytest.raises(ConfigError, match=missing):
        config.airflow_environment(env, major=3)


@pytest.mark.parametrize(
    "name",
    [
        "core.executor",
        "CORE.EXECUTOR",
        "AIRFLOW__CORE__EXECUTOR",
        "database.sql_alchemy_conn_cmd",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
        "celery_broker_transport_options.predefined_queues",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION",
        "logging.remote_base_log_folder",
    ],
)
def test_protected_options(name: str) -> None:
    assert config.is_protected_option(name)


@pytest.mark.parametrize(
    "name",
    [
        "core.load_examples",
        "celery.worker_concurrency",
        "AIRFLOW__LOGGING__DELETE_LOCAL_LOGS",
        "secrets.backend",
        "core.auth_manager",
        "PATH",
    ],
)
def test_unprotected_options(name: str) -> None:
    assert not config.is_protected_option(name)


def test_every_protected_option_is_section_dot_key() -> None:
    for option in config.PROTECTED_OPTIONS:
        section, _, key = option.partition(".")
        assert section and key and option == option.lower()
        assert config.option_name(config.env_name(option)) == option


def test_startup_exports_keep_user_variables_and_reject_reserved_ones() -> None:
    before = {"PATH": "/bin", "KEEP": "1", "GONE": "x", "AIRFLOW_HOME": "/opt/airflow"}
    after = {
        "PATH": "/opt/java/bin:/bin",
        "KEEP": "1",
        "NEW": "y",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "64",
        "OPENMWAA_COMPONENT": "worker",
        "AIRFLOW_HOME": "/tmp",
        "SHLVL": "2",
        "_": "/usr/bin/env",
    }

    changes, removed, rejected = config.filter_startup_exports(before, after)

    assert changes == {
        "PATH": "/opt/java/bin:/bin",
        "NEW": "y",
        "AIRFLOW__CORE__PARALLELISM": "64",
    }
    assert removed == ["GONE"]
    assert rejected == ["AIRFLOW_HOME", "AIRFLOW__CORE__EXECUTOR", "OPENMWAA_COMPONENT"]


@pytest.mark.parametrize(
    ("component", "major", "expected"),
    [
        ("scheduler", 3, ["airflow", "scheduler"]),
        ("dag-processor", 3, ["airflow", "dag-processor"]),
        ("triggerer", 3, ["airflow", "triggerer"]),
        (
            "api-server",
            3,
            ["airflow", "api-server", "--apps", "core", "--port", "8080", "--proxy-headers"],
        ),
        ("api-server", 2, ["airflow", "webserver", "--port", "8080"]),
        ("execution-api", 3, ["airflow", "api-server", "--apps", "execution", "--port", "8080"]),
        ("worker", 3, ["airflow", "celery", "worker"]),
    ],
)
def test_airflow_command(component: str, major: int, expected: list[str]) -> None:
    assert config.airflow_command(component, major, "8080") == expected


def test_airflow_2_has_no_execution_api_component() -> None:
    with pytest.raises(ConfigError, match="execution-api needs Airflow 3"):
        config.airflow_command("execution-api", 2, "8081")


def test_fails_when_component_is_unknown() -> None:
    with pytest.raises(ConfigError, match="OPENMWAA_COMPONENT"):
        config.airflow_command("webserver", 3, "8080")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("boto3\n", False),
        ("-c https://example.com/c.txt\nboto3\n", True),
        ("--constraint=c.txt\n", True),
        ("--constraint c.txt\n", True),
        ("# -c https://example.com/c.txt\nboto3\n", True),
        ("my-c-package\n", False),
    ],
)
def test_requirements_have_constraints(text: str, expected: bool) -> None:
    assert config.requirements_have_constraints(text) is expected


def test_requirements_are_empty() -> None:
    assert config.requirements_are_empty("# only comments\n\n  \n")
    assert not config.requirements_are_empty("# x\nboto3\n")


def test_local_constraints_pin_every_distribution() -> None:
    assert config.local_constraints({"b": "2", "a": "1.0"}) == "a==1.0\nb==2\n"


def test_admin_secret() -> None:
    admin = config.parse_admin_secret(json.dumps({"username": "admin", "password": "x"}))

    assert (admin.username, admin.password) == ("admin", "x")


@pytest.mark.parametrize("raw", ["x", json.dumps({"username": "admin"}), "[]"])
def test_fails_when_admin_secret_is_invalid(raw: Any) -> None:
    with pytest.raises(ConfigError, match="OPENMWAA_ADMIN_SECRET"):
        config.parse_admin_secret(raw)


# -- Airflow's metrics (OPENMWAA_METRICS) ---------------------------------------------------


def metrics_env(**overrides: Any) -> dict[str, str]:
    """The contract's environment with OPENMWAA_METRICS (``overrides`` go into its JSON)."""
    metrics = {
        "namespace": "AmazonMWAA",
        "environment": "prod",
        "metrics": ["SchedulerHeartbeat", "OpenSlots", "DAGDurationSuccess"],
        "port": 8125,
        "relay": True,
        **overrides,
    }
    return contract_env(OPENMWAA_METRICS=json.dumps(metrics))


def test_parse_metrics() -> None:
    metrics = config.parse_metrics(metrics_env()["OPENMWAA_METRICS"])

    assert metrics == config.MetricsConfig(
        "AmazonMWAA", "prod", ("SchedulerHeartbeat", "OpenSlots", "DAGDurationSuccess"), 8125, True
    )
    assert config.parse_metrics(None) is None
    assert config.parse_metrics("") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"metrics": "OpenSlots", "port": 1}), "metrics is not a list"),
        (json.dumps({"metrics": [], "port": "8125"}), "port is not a port number"),
        (json.dumps({"metrics": [], "port": 70000}), "port is not a port number"),
        (json.dumps({"metrics": [], "port": 1, "environment": "e"}), "namespace is not set"),
        (json.dumps({"metrics": [], "port": 1, "namespace": "n"}), "environment is not set"),
    ],
)
def test_fails_when_metrics_are_invalid(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"OPENMWAA_METRICS.*{message}"):
        config.parse_metrics(raw)


def test_metrics_turn_statsd_on_towards_the_relay_with_tags() -> None:
    settings = config.metrics_settings(metrics_env(port=9125), 3)

    assert settings["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert settings["AIRFLOW__METRICS__STATSD_HOST"] == "127.0.0.1"
    assert settings["AIRFLOW__METRICS__STATSD_PORT"] == "9125"
    assert settings["AIRFLOW__METRICS__STATSD_PREFIX"] == "airflow"
    assert settings["AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED"] == "True"
    assert settings["AIRFLOW__METRICS__STATSD_DATADOG_ENABLED"] == "False"
    assert settings["AIRFLOW__METRICS__STATSD_DISABLED_TAGS"] == "job_id,run_id"
    assert settings["AIRFLOW__METRICS__LEGACY_NAMES_ON"] == "False"
    assert "AIRFLOW__METRICS__METRICS_USE_PATTERN_MATCH" not in settings
    assert "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY" not in settings


def test_metrics_on_airflow_2_use_patterns_and_milliseconds() -> None:
    settings = config.metrics_settings(metrics_env(), 2)

    assert settings["AIRFLOW__METRICS__METRICS_USE_PATTERN_MATCH"] == "True"
    assert settings["AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY"] == "True"
    assert "AIRFLOW__METRICS__LEGACY_NAMES_ON" not in settings


def test_airflows_allow_list_is_the_allowed_metrics_airflow_names() -> None:
    settings = config.metrics_settings(metrics_env(metrics=["ZombiesKilled", "OpenSlots"]), 3)

    patterns = settings["AIRFLOW__METRICS__METRICS_ALLOW_LIST"].split(",")
    assert len(patterns) == 3

    def allowed(name: str) -> bool:  # Airflow's PatternAllowListValidator
        return any(re.findall(pattern, name.lower()) for pattern in patterns)

    assert allowed("executor.open_slots")
    assert allowed("executor.open_slots,status=open,executor_class_name=CeleryExecutor")
    assert allowed("zombies_killed,dag_id=d,task_id=t")
    assert allowed("task_instances_without_heartbeats_killed")
    assert not allowed("executor.open_slots.CeleryExecutor")
    assert not allowed("scheduler_heartbeat")
    assert not allowed("my.executor.open_slots")


@pytest.mark.parametrize("option", ["METRICS_ALLOW_LIST", "METRICS_BLOCK_LIST"])
def test_a_users_allow_or_block_list_is_left_to_airflow(option: str) -> None:
    env = {**metrics_env(), f"AIRFLOW__METRICS__{option}": "scheduler"}

    settings = config.metrics_settings(env, 2)

    assert "AIRFLOW__METRICS__METRICS_ALLOW_LIST" not in settings
    assert "AIRFLOW__METRICS__METRICS_USE_PATTERN_MATCH" not in settings
    assert settings["AIRFLOW__METRICS__STATSD_ON"] == "True"


def test_without_metrics_statsd_stays_off() -> None:
    assert config.metrics_settings(contract_env(), 3) == {}
    assert config.metrics_settings(metrics_env(metrics=[]), 3) == {}
    assert config.metrics_settings(metrics_env(metrics=["NoSuchMetric"]), 3) == {}
    assert not any(k.startswith("AIRFLOW__METRICS__") for k in airflow_env(contract_env()))


def airflow_env(env: dict[str, str]) -> dict[str, str]:
    return config.airflow_environment(env, 3)


def test_airflow_environment_carries_the_metrics_settings_over_the_users() -> None:
    env = {**metrics_env(), "AIRFLOW__METRICS__STATSD_HOST": "statsd.example.com"}

    result = airflow_env(env)

    assert result["AIRFLOW__METRICS__STATSD_HOST"] == "127.0.0.1"
    assert result["AIRFLOW__METRICS__STATSD_ON"] == "True"


@pytest.mark.parametrize(
    "name",
    [
        "metrics.statsd_on",
        "metrics.statsd_host",
        "AIRFLOW__METRICS__STATSD_PORT",
        "metrics.statsd_prefix",
        "metrics.statsd_influxdb_enabled",
        "metrics.statsd_datadog_enabled",
        "metrics.statsd_disabled_tags",
        "metrics.legacy_names_on",
        "metrics.stat_name_handler",
        "metrics.statsd_custom_client_path",
        "metrics.timer_unit_consistency",
    ],
)
def test_the_metrics_wiring_is_protected(name: str) -> None:
    assert config.is_protected_option(name)


@pytest.mark.parametrize(
    "name", ["metrics.metrics_allow_list", "metrics.metrics_block_list", "metrics.otel_on"]
)
def test_users_may_filter_airflows_metrics_as_on_mwaa(name: str) -> None:
    assert not config.is_protected_option(name)
