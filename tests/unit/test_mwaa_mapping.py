"""The pure core of `openmwaa from-mwaa`: MWAA's GetEnvironment -> props, report, app text.

No AWS here: `full_environment()` is a GetEnvironment `Environment` with every field set (the
CLI tests send the same one through a botocore Stubber, which checks it against the model).
"""

from __future__ import annotations

import ast
import copy
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.model
import botocore.session
import pytest

from openmwaa import AirflowEnvironmentProps
from openmwaa.cli import bucket_copy, mwaa_mapping
from openmwaa.cli.bucket_copy import CopyItem, CopyPlan, CopyResult, SourceObject
from openmwaa.cli.mwaa_mapping import (
    Disposition,
    Lookups,
    MappedEnvironment,
    NetworkFacts,
    SubnetFacts,
    map_environment,
)
from openmwaa.environment_props import resolve
from openmwaa.validation import validate
from openmwaa.versions import DEFAULT_AIRFLOW_VERSION, SUPPORTED_AIRFLOW_VERSIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
NAME = "analytics-prod"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-1111-2222-3333-444455556666"

SMTP_PASSWORD = "SENTINEL-smtp-password-7f3a"
API_TOKEN = "SENTINEL-api-token-91bd"
WEBHOOK_URL = "https://bot:SENTINEL-url-password-22c1@hooks.example.com/airflow"
DB_URL = "postgresql://airflow:SENTINEL-db-password-5e0d@db.example.com/airflow"
SECRET_VALUES = (SMTP_PASSWORD, API_TOKEN, WEBHOOK_URL, DB_URL)
TIMEZONE = "Europe/Amsterdam"
INSTANCE_NAME = "Analytics 'prod' \"eu\" \\ ünïcode"
OPTIONS: dict[str, str] = {
    "core.default_timezone": TIMEZONE,
    "celery.worker_autoscale": "10,2",
    "webserver.instance_name": INSTANCE_NAME,
    "smtp.smtp_password": SMTP_PASSWORD,
    "custom.api_token": API_TOKEN,
    "custom.webhook_url": WEBHOOK_URL,
    "core.executor": "LocalExecutor",
    "database.sql_alchemy_conn": DB_URL,
}
KEPT_OPTIONS = ("celery.worker_autoscale", "core.default_timezone", "webserver.instance_name")
SECRET_OPTIONS = ("custom.api_token", "custom.webhook_url", "smtp.smtp_password")
RESERVED_OPTIONS = ("core.executor", "database.sql_alchemy_conn")
LOG_TYPES = {
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
    "TaskLogs": "Task",
}


def full_environment(
    *,
    name: str = NAME,
    region: str = REGION,
    subnet_ids: tuple[str, ...] = ("subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"),
    security_group_ids: tuple[str, ...] = ("sg-0a1b2c3d4e5f60003",),
    bucket: str = "mwaa-analytics-source",
    requirements_version: str = "req-v1",
    plugins_version: str = "plg-v1",
    startup_version: str = "sta-v1",
    kms_key: str = KEY_ARN,
) -> dict[str, Any]:
    """A GetEnvironment `Environment` with every field of botocore's model set."""
    created = datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.UTC)
    return {
        "Name": name,
        "Status": "AVAILABLE",
        "Arn": f"arn:aws:airflow:{region}:{ACCOUNT}:environment/{name}",
        "CreatedAt": created,
        "WebserverUrl": f"https://0a1b2c3d-vpce.c0.{region}.airflow.amazonaws.com",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/service-role/mwaa-{name}",
        "ServiceRoleArn": (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/airflow.amazonaws.com/"
            "AWSServiceRoleForAmazonMWAA"
        ),
        "KmsKey": kms_key,
        "AirflowVersion": "2.10.3",
        "SourceBucketArn": f"arn:aws:s3:::{bucket}",
        "DagS3Path": "airflow/dags",
        "PluginsS3Path": "airflow/plugins.zip",
        "PluginsS3ObjectVersion": plugins_version,
        "RequirementsS3Path": "airflow/requirements.txt",
        "RequirementsS3ObjectVersion": requirements_version,
        "StartupScriptS3Path": "airflow/startup.sh",
        "StartupScriptS3ObjectVersion": startup_version,
        "AirflowConfigurationOptions": dict(OPTIONS),
        "EnvironmentClass": "mw1.medium",
        "MaxWorkers": 8,
        "NetworkConfiguration": {
            "SubnetIds": list(subnet_ids),
            "SecurityGroupIds": list(security_group_ids),
        },
        "LoggingConfiguration": {
            log_type: {
                "Enabled": log_type != "WebserverLogs",
                "LogLevel": "WARNING" if log_type == "TaskLogs" else "INFO",
                "CloudWatchLogGroupArn": (
                    f"arn:aws:logs:{region}:{ACCOUNT}:log-group:airflow-{name}-{suffix}"
                ),
            }
            for log_type, suffix in LOG_TYPES.items()
        },
        "LastUpdate": {
            "Status": "SUCCESS",
            "CreatedAt": created,
            "Error": {"ErrorCode": "None", "ErrorMessage": "no error"},
            "Source": "Console",
            "WorkerReplacementStrategy": "GRACEFUL",
        },
        "WeeklyMaintenanceWindowStart": "SUN:23:45",
        "Tags": {"team": "data", "cost-center": "42", "aws:cloudformation:stack-name": "mwaa"},
        "WebserverAccessMode": "PUBLIC_ONLY",
        "MinWorkers": 2,
        "Schedulers": 3,
        "WebserverVpcEndpointService": f"com.amazonaws.vpce.{region}.vpce-svc-0a1b2c3d4e5f60004",
        "DatabaseVpcEndpointService": f"com.amazonaws.vpce.{region}.vpce-svc-0a1b2c3d4e5f60005",
        "CeleryExecutorQueue": f"arn:aws:sqs:{region}:{ACCOUNT}:airflow-celery-0a1b2c3d",
        "EndpointManagement": "SERVICE",
        "MinWebservers": 2,
        "MaxWebservers": 4,
        "IdentityCenterConfiguration": {
            "StartUrl": "https://d-1234567890.awsapps.com/start",
            "IdentityStoreId": "d-1234567890",
        },
        "Teams": {
            "marketing": {"SourceBucketArn": "arn:aws:s3:::mwaa-marketing", "DagS3Path": "dags"}
        },
    }


NETWORK = NetworkFacts(
    vpc_id="vpc-0a1b2c3d4e5f60000",
    vpc_cidr_block="10.20.0.0/16",
    subnets=(
        SubnetFacts("subnet-0a1b2c3d4e5f60001", "eu-west-1a", "rtb-0a1b2c3d4e5f60001"),
        SubnetFacts("subnet-0a1b2c3d4e5f60002", "eu-west-1b", "rtb-0a1b2c3d4e5f60002"),
    ),
)


def mapped(**overrides: Any) -> MappedEnvironment:
    environment = {**full_environment(), **overrides}
    return map_environment(environment, Lookups(network=NETWORK))


def line(m: MappedEnvironment, setting: str) -> mwaa_mapping.ReportLine:
    (found,) = [entry for entry in m.report if entry.setting == setting]
    return found


def assert_validates(m: MappedEnvironment) -> None:
    props = AirflowEnvironmentProps(**m.plain_props())
    assert validate(resolve(props, construct_id="Airflow")) == []


# Every field of botocore's model.


def model_paths(shape: botocore.model.Shape, prefix: str = "") -> list[str]:
    """Every member path of a structure, nested structures (and lists/maps of them) too."""
    paths = []
    for name, member in shape.members.items():
        path = f"{prefix}{name}"
        paths.append(path)
        inner = member
        if member.type_name == "list":
            inner = member.member
        elif member.type_name == "map":
            inner = member.value
        if inner.type_name == "structure":
            paths += model_paths(inner, f"{path}.")
    return paths


def environment_shape(model: botocore.model.ServiceModel) -> botocore.model.Shape:
    output = model.operation_model("GetEnvironment").output_shape
    assert output is not None
    return output.members["Environment"]


def test_mapping_knows_every_field_of_the_botocore_environment_shape() -> None:
    model = botocore.session.get_session().get_service_model("mwaa")
    paths = model_paths(environment_shape(model))
    assert len(paths) > 40
    assert [p for p in paths if not mwaa_mapping.is_handled(p)] == []


def test_fails_when_the_botocore_model_gains_a_field() -> None:
    data = copy.deepcopy(botocore.session.get_session().get_service_data("mwaa"))
    data["shapes"]["Environment"]["members"]["ScaleToZero"] = {"shape": "MaxWorkers"}
    data["shapes"]["ModuleLoggingConfiguration"]["members"]["RetentionDays"] = {
        "shape": "MaxWorkers"
    }
    model = botocore.model.ServiceModel(data, "mwaa")
    unknown = [p for p in model_paths(environment_shape(model)) if not mwaa_mapping.is_handled(p)]
    assert "ScaleToZero" in unknown
    assert "LoggingConfiguration.TaskLogs.RetentionDays" in unknown


def test_mapping_top_level_fields_are_the_model_fields() -> None:
    model = botocore.session.get_session().get_service_model("mwaa")
    assert set(environment_shape(model).members) <= set(mwaa_mapping.TOP_LEVEL_FIELDS)


def test_full_environment_sets_every_field_of_the_model() -> None:
    model = botocore.session.get_session().get_service_model("mwaa")
    assert set(full_environment()) == set(environment_shape(model).members)


def test_report_has_a_line_for_every_field() -> None:
    for environment in (full_environment(), {"Name": NAME}):
        m = map_environment(environment)
        settings = {entry.setting.split(".")[0] for entry in m.report}
        assert set(mwaa_mapping.TOP_LEVEL_FIELDS) <= settings
        assert all(isinstance(entry.disposition, Disposition) for entry in m.report)


def test_report_names_a_field_this_version_does_not_know() -> None:
    m = mapped(ScaleToZero=True)
    assert line(m, "ScaleToZero").disposition is Disposition.NO_EQUIVALENT
    assert "does not know" in line(m, "ScaleToZero").note


def test_migration_doc_table_names_every_field() -> None:
    doc = (REPO_ROOT / "docs" / "migration.md").read_text()
    assert [f for f in mwaa_mapping.TOP_LEVEL_FIELDS if f"`{f}`" not in doc] == []


# Airflow configuration options and secrets.


def test_report_and_summary_hold_no_configuration_value() -> None:
    m = mapped()
    text = mwaa_mapping.render_report(m) + mwaa_mapping.render_summary(m, output_dir="out")
    for value in (*SECRET_VALUES, TIMEZONE, INSTANCE_NAME, "LocalExecutor"):
        assert value not in text
    for key in OPTIONS:
        assert f"AirflowConfigurationOptions.{key}" in text


def test_app_leaves_secret_looking_options_out() -> None:
    m = mapped()
    app = mwaa_mapping.render_app(m)
    for value in SECRET_VALUES:
        assert value not in app
    assert m.secret_options == SECRET_OPTIONS
    for key in SECRET_OPTIONS:
        assert f"# {key}: left out: it looks secret" in app
        assert line(m, f"AirflowConfigurationOptions.{key}").disposition is (
            Disposition.MAPS_DIFFERENTLY
        )
    assert (
        "AIRFLOW__SMTP__SMTP_PASSWORD"
        in line(m, "AirflowConfigurationOptions.smtp.smtp_password").note
    )


def test_app_leaves_reserved_options_out_so_it_validates() -> None:
    m = mapped()
    assert [k for k, _ in m.configuration_options] == list(KEPT_OPTIONS)
    for key in RESERVED_OPTIONS:
        assert line(m, f"AirflowConfigurationOptions.{key}").disposition is (
            Disposition.NO_EQUIVALENT
        )
        assert f"# {key}: {mwaa_mapping.RESERVED_COMMENT}" in mwaa_mapping.render_app(m)
    assert_validates(m)


def test_app_leaves_malformed_option_keys_out() -> None:
    m = mapped(AirflowConfigurationOptions={**OPTIONS, "custom.sub.key_name": "x"})
    assert line(m, "AirflowConfigurationOptions.custom.sub.key_name").disposition is (
        Disposition.NO_EQUIVALENT
    )
    assert "# custom.sub.key_name: left out: not a `section.key`" in mwaa_mapping.render_app(m)
    assert_validates(m)


def test_app_keeps_ordinary_options_with_their_values() -> None:
    app = mwaa_mapping.render_app(mapped())
    tree = ast.parse(app)
    literals = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    assert TIMEZONE in literals
    assert INSTANCE_NAME in literals


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("smtp.smtp_password", "x", True),
        ("custom.client_secret", "x", True),
        ("custom.auth_token", "x", True),
        ("celery.ssl_key", "/etc/key.pem", True),
        ("custom.url", "redis://:pw@host:6379/0", True),
        ("custom.url", "redis://user:pw@host:6379/0", True),
        ("core.default_timezone", "utc", False),
        ("custom.url", "https://example.com/path", False),
        # The section is not looked at: `secrets.*` options are not secret by their section.
        ("secrets.backend_kwargs", '{"connections_prefix": "airflow/connections"}', False),
        ("secrets.use_cache", "True", False),
        ("secrets.cache_ttl_seconds", "900", False),
        ("secrets.custom_token", "x", True),
        # The words import-metadata masks in variable keys, but `auth`, which Airflow's own
        # options use for settings that hold no secret.
        ("sentry.sentry_dsn", "https://abc@o1.ingest.sentry.io/1", True),
        ("custom.ssh_passphrase", "x", True),
        ("core.auth_manager", "airflow.providers.fab.auth_manager.FabAuthManager", False),
        ("api.auth_backends", "airflow.api.auth.backend.session", False),
    ],
)
def test_secret_looking_options(key: str, value: str, secret: bool) -> None:
    assert mwaa_mapping.is_secret_option(key, value) is secret


SECRETS_MANAGER_BACKEND = (
    "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
)


def with_secrets_backend(kwargs: str | None, backend: str | None = SECRETS_MANAGER_BACKEND) -> Any:
    options = dict(OPTIONS)
    if backend is not None:
        options["secrets.backend"] = backend
    if kwargs is not None:
        options["secrets.backend_kwargs"] = kwargs
    options["secrets.use_cache"] = "True"
    return mapped(AirflowConfigurationOptions=options)


def test_mwaa_secrets_manager_backend_with_openmwaa_prefixes_maps_and_is_left_out() -> None:
    kwargs = (
        '{"connections_prefix": "airflow/connections", "variables_prefix": "airflow/variables"}'
    )
    m = with_secrets_backend(kwargs)
    app = mwaa_mapping.render_app(m)
    kwargs_line = line(m, "AirflowConfigurationOptions.secrets.backend_kwargs")
    assert kwargs_line.disposition is Disposition.MAPS
    assert "`connections_prefix` and `variables_prefix` are as openmwaa's" in kwargs_line.note
    assert f"# secrets.backend_kwargs: {mwaa_mapping.BACKEND_KWARGS_COMMENT}" in app
    assert kwargs not in app  # openmwaa's own prefixes must not be replaced
    assert line(m, "AirflowConfigurationOptions.secrets.backend").disposition is Disposition.MAPS
    assert f"# secrets.backend: {mwaa_mapping.RESERVED_COMMENT}" in app
    assert SECRETS_MANAGER_BACKEND not in mwaa_mapping.render_report(m)
    # Not secret: kept in app.py, not sent to startup.sh.
    assert ("secrets.use_cache", "True") in m.configuration_options
    assert "secrets.backend_kwargs" not in m.secret_options
    assert_validates(m)


def test_mwaa_backend_kwargs_with_other_prefixes_say_what_to_move() -> None:
    kwargs = '{"connections_prefix": "mwaa/conns", "variables_prefix": null, "sep": "-"}'
    m = with_secrets_backend(kwargs)
    entry = line(m, "AirflowConfigurationOptions.secrets.backend_kwargs")
    assert entry.disposition is Disposition.MAPS_DIFFERENTLY
    assert "`connections_prefix` differs from openmwaa's `airflow/connections`" in entry.note
    assert "`airflow/connections/<same id>`" in entry.note
    assert "`variables_prefix` is null" in entry.note
    assert "`sep`" in entry.note
    text = mwaa_mapping.render_report(m) + mwaa_mapping.render_app(m)
    assert "mwaa/conns" not in text
    # An absent prefix is the provider's default, which is openmwaa's.
    absent = line(
        with_secrets_backend('{"connections_prefix": "airflow/connections"}'),
        "AirflowConfigurationOptions.secrets.backend_kwargs",
    )
    assert absent.disposition is Disposition.MAPS


def test_mwaa_other_secrets_backend_has_no_equivalent() -> None:
    m = with_secrets_backend(
        '{"connections_prefix": "airflow/connections"}',
        backend="airflow.providers.amazon.aws.secrets.systems_manager."
        "SystemsManagerParameterStoreBackend",
    )
    for key in ("secrets.backend", "secrets.backend_kwargs"):
        assert line(m, f"AirflowConfigurationOptions.{key}").disposition is (
            Disposition.NO_EQUIVALENT
        )
    assert "SystemsManager" not in mwaa_mapping.render_report(m)
    unused = with_secrets_backend("not json", backend=None)
    assert "MWAA set no `secrets.backend`" in (
        line(unused, "AirflowConfigurationOptions.secrets.backend_kwargs").note
    )
    assert "not json" not in mwaa_mapping.render_app(unused)


# Versions, sizes, access, logging, tags, keys, maintenance.


@pytest.mark.parametrize(
    ("mwaa", "openmwaa"),
    [
        *((version, version) for version in SUPPORTED_AIRFLOW_VERSIONS),
        ("2.10.3", "2.11.2"),
        ("2.7.2", "2.11.2"),
        ("2.11.0", "2.11.2"),
        ("3.0.6", DEFAULT_AIRFLOW_VERSION),
        ("3.9.0", DEFAULT_AIRFLOW_VERSION),
        ("1.10.12", "2.11.2"),
        ("9.0.0", DEFAULT_AIRFLOW_VERSION),
    ],
)
def test_airflow_version_maps_to_a_supported_one(mwaa: str, openmwaa: str) -> None:
    assert mwaa_mapping.map_airflow_version(mwaa) == openmwaa
    m = mapped(AirflowVersion=mwaa)
    assert m.airflow_version == openmwaa
    expected = Disposition.MAPS if mwaa == openmwaa else Disposition.MAPS_DIFFERENTLY
    assert line(m, "AirflowVersion").disposition is expected
    assert m.airflow_version in SUPPORTED_AIRFLOW_VERSIONS


def test_unsupported_version_is_named_in_the_app() -> None:
    app = mwaa_mapping.render_app(mapped(AirflowVersion="2.10.3"))
    assert "# MWAA ran Airflow 2.10.3" in app
    assert 'airflow_version="2.11.2"' in app


def test_counts_map_as_given() -> None:
    m = mapped()
    assert (m.min_workers, m.max_workers, m.schedulers) == (2, 8, 3)
    assert (m.min_webservers, m.max_webservers) == (2, 4)
    assert m.environment_class.value == "mw1.medium"
    assert line(m, "MaxWorkers").disposition is Disposition.MAPS


def test_webserver_counts_map_differently_on_airflow_3() -> None:
    m = mapped(AirflowVersion="3.0.6")
    assert line(m, "MinWebservers").disposition is Disposition.MAPS_DIFFERENTLY
    assert "execution-api" in line(m, "MaxWebservers").note
    assert line(mapped(), "MinWebservers").disposition is Disposition.MAPS


def test_counts_outside_openmwaa_ranges_are_clamped_and_said() -> None:
    m = mapped(MaxWorkers=250, Schedulers=9)
    assert (m.max_workers, m.schedulers) == (200, 5)
    assert line(m, "MaxWorkers").disposition is Disposition.MAPS_DIFFERENTLY
    assert_validates(m)


def test_micro_environment_validates() -> None:
    m = mapped(
        EnvironmentClass="mw1.micro",
        MinWorkers=1,
        MaxWorkers=1,
        Schedulers=1,
        MinWebservers=1,
        MaxWebservers=1,
    )
    assert m.environment_class.value == "mw1.micro"
    assert_validates(m)


def test_unknown_environment_class_maps_to_the_default_and_says_so() -> None:
    m = mapped(EnvironmentClass="mw2.huge")
    assert m.environment_class.value == "mw1.small"
    assert line(m, "EnvironmentClass").disposition is Disposition.MAPS_DIFFERENTLY
    assert_validates(m)


@pytest.mark.parametrize("mode", ["PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"])
def test_public_access_starts_private_and_says_how(mode: str) -> None:
    m = mapped(WebserverAccessMode=mode)
    assert m.webserver_access_mode == "PRIVATE_ONLY"
    entry = line(m, "WebserverAccessMode")
    assert entry.disposition is Disposition.MAPS_DIFFERENTLY
    assert "domain_name" in entry.note
    assert "allowed_cidrs" in entry.note
    assert_validates(m)


def test_private_access_maps() -> None:
    assert line(mapped(WebserverAccessMode="PRIVATE_ONLY"), "WebserverAccessMode").disposition is (
        Disposition.MAPS
    )


def test_logging_maps_per_log_type_and_the_triggerer_follows_the_scheduler() -> None:
    m = mapped()
    by_field = {s.field: s for s in m.logging}
    assert by_field["task"].level == "WARNING"
    assert by_field["webserver"].enabled is False
    assert by_field["triggerer"] == mwaa_mapping.LogSetting(
        "triggerer", by_field["scheduler"].enabled, by_field["scheduler"].level
    )


def test_log_group_clash_is_a_warning_unless_renamed() -> None:
    m = mapped()
    assert any("airflow-analytics-prod-Task" in w for w in m.warnings)
    renamed = map_environment(full_environment(), environment_name="analytics-next")
    assert not any("log groups" in w for w in renamed.warnings)
    assert line(renamed, "Name").disposition is Disposition.MAPS_DIFFERENTLY
    assert renamed.environment_name == "analytics-next"


def test_aws_tags_are_left_out() -> None:
    m = mapped()
    assert dict(m.tags) == {"cost-center": "42", "team": "data"}
    assert line(m, "Tags").disposition is Disposition.MAPS_DIFFERENTLY
    assert_validates(m)


def test_kms_key_id_becomes_an_arn_and_an_alias_needs_a_lookup() -> None:
    key_id = "0a1b2c3d-1111-2222-3333-444455556666"
    assert mapped(KmsKey=key_id).kms_key_arn == KEY_ARN
    alias = mapped(KmsKey="alias/airflow")
    assert alias.kms_key_arn is None
    assert line(alias, "KmsKey").disposition is Disposition.NO_EQUIVALENT
    assert mwaa_mapping.is_kms_alias("alias/airflow")
    resolved = map_environment(
        {**full_environment(), "KmsKey": "alias/airflow"}, Lookups(kms_key_arn=KEY_ARN)
    )
    assert resolved.kms_key_arn == KEY_ARN


@pytest.mark.parametrize(
    ("start", "window"),
    [
        ("TUE:03:30", "tue:03:30-tue:04:00"),
        ("SUN:23:45", "sun:23:45-mon:00:15"),
        ("SAT:23:30", "sat:23:30-sun:00:00"),
        ("Mon:00:00", "mon:00:00-mon:00:30"),
        ("TUE 03:30", None),
    ],
)
def test_maintenance_window_becomes_the_database_window(start: str, window: str | None) -> None:
    assert mwaa_mapping.database_maintenance_window(start) == window


def test_network_imports_mwaa_vpc_or_builds_a_new_one() -> None:
    imported = mwaa_mapping.render_app(mapped())
    assert "ec2.Vpc.from_vpc_attributes(" in imported
    assert '"rtb-0a1b2c3d4e5f60002"' in imported
    assert "vpc=vpc," in imported
    new_vpc = map_environment(full_environment())
    assert "ec2." not in mwaa_mapping.render_app(new_vpc)
    assert line(new_vpc, "NetworkConfiguration.SubnetIds").openmwaa.startswith("`vpc` not given")


def test_object_versions_are_pinned_only_to_copies() -> None:
    m = mapped()
    assert m.object_versions == ()
    assert line(m, "RequirementsS3ObjectVersion").disposition is Disposition.MAPS_DIFFERENTLY
    copy_result = CopyResult(
        source_bucket="mwaa-analytics-source",
        target_bucket="openmwaa-bucket",
        pins={"requirements_s3_object_version": "new-req", "plugins_s3_object_version": "new-plg"},
        dag_objects=3,
        copied=(("airflow/requirements.txt", "requirements.txt"),),
    )
    pinned = map_environment(full_environment(), copy=copy_result)
    assert dict(pinned.object_versions) == copy_result.pins
    assert line(pinned, "RequirementsS3ObjectVersion").disposition is Disposition.MAPS
    assert 'requirements_s3_object_version="new-req"' in mwaa_mapping.render_app(pinned)
    assert_validates(pinned)


def test_execution_role_is_reported_with_what_to_grant() -> None:
    m = mapped()
    note = line(m, "ExecutionRoleArn").note
    assert f"arn:aws:iam::{ACCOUNT}:role/service-role/mwaa-{NAME}" in note
    assert "add_to_policy" in note
    assert m.execution_role_arn is not None
    assert m.execution_role_arn in mwaa_mapping.render_app(m)


# The generated files.


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--isolated", "app.py"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("network", [NETWORK, None])
def test_rendered_app_is_formatted_and_lint_clean(
    tmp_path: Path, network: NetworkFacts | None
) -> None:
    m = map_environment(full_environment(), Lookups(network=network))
    (tmp_path / "app.py").write_text(mwaa_mapping.render_app(m))
    formatted = ruff("format", "--check", "--diff", cwd=tmp_path)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    linted = ruff("check", "--select", "E,F,W,I,B,UP,N,SIM", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_fails_when_the_rendered_app_is_not_formatted(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = {'a':1}\n")
    assert ruff("format", "--check", cwd=tmp_path).returncode != 0


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "it's",
        'say "hi"',
        "both ' and \"",
        "back\\slash",
        "new\nline",
        "tab\t",
        "ünï",
        "\x00\u2028",
        "🙂",
    ],
)
def test_python_string_is_a_literal_of_the_text(text: str) -> None:
    assert ast.literal_eval(mwaa_mapping.python_string(text)) == text


def test_mapping_and_adapter_load_without_the_aws_cdk() -> None:
    code = (
        "import sys; import openmwaa.cli.from_mwaa, openmwaa.cli.mwaa_mapping; "
        "print(sorted(m for m in sys.modules if m == 'jsii' or m.startswith('aws_cdk')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "constructs")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


def test_app_environment_is_mwaa_account_and_region() -> None:
    tree = ast.parse(mwaa_mapping.render_app(mapped()))
    (assignment,) = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ENVIRONMENT"
    ]
    assert ast.unparse(assignment.value) == (
        f"cdk.Environment(account='{ACCOUNT}', region='{REGION}')"
    )


def test_every_public_class_and_function_of_the_mapping_has_a_docstring() -> None:
    tree = ast.parse(Path(mwaa_mapping.__file__).read_text())
    missing = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef | ast.FunctionDef) or node.name.startswith("_"):
            continue
        members = [node]
        if isinstance(node, ast.ClassDef):
            members += [
                n
                for n in node.body
                if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
            ]
        missing += [m.name for m in members if ast.get_docstring(m) is None]
    assert missing == []


# The report's next steps.


def test_report_copy_command_repeats_the_options_that_shape_the_app() -> None:
    m = map_environment(
        full_environment(), environment_name="analytics-next", region=REGION, new_vpc=True
    )
    report = mwaa_mapping.render_report(m, output_dir="out dir")
    assert (
        f"`openmwaa from-mwaa {NAME} --region {REGION} --name analytics-next --new-vpc "
        "--output-dir 'out dir' --force --copy-bucket --target-bucket "
        "<SourceBucketName output>`"
    ) in report
    # Without options, the region is the environment's (from its ARN): still the same app.
    plain = mwaa_mapping.render_report(map_environment(full_environment()), output_dir="out")
    assert f"`openmwaa from-mwaa {NAME} --region {REGION} --output-dir out --force " in plain


@pytest.mark.parametrize("version", ["2.10.3", "3.0.6"])
def test_report_points_connections_to_the_migration_doc(version: str) -> None:
    m = mapped(AirflowVersion=version)
    (step,) = [s for s in mwaa_mapping.render_report(m).splitlines() if s.startswith("4. ")]
    assert mwaa_mapping.MIGRATION_DOC_SECTION in step
    assert "MWAA's CLI does not run" in step
    if m.airflow_version.startswith("2."):
        assert "`openmwaa import-metadata` does not apply to Airflow 2.11.2" in step
        assert "`python /opt/openmwaa/runtime.pyz airflow connections import FILE`" in step
        assert "ECS Exec" in step
        assert "keep connections and variables in Secrets Manager" in step
    else:
        assert "load the files into openmwaa with `openmwaa import-metadata`" in step
        assert "runtime.pyz" not in step


def test_cdk_json_has_the_project_feature_flags() -> None:
    project = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    generated = json.loads(mwaa_mapping.render_cdk_json())
    assert generated["context"] == project
    assert generated["app"] == "python app.py"


# The bucket copy's plan.


def test_paths_become_keys() -> None:
    assert bucket_copy.relative_key("requirements.txt") == "requirements.txt"
    assert bucket_copy.relative_key("/airflow/plugins.zip") == "airflow/plugins.zip"
    assert bucket_copy.relative_key("s3://b/startup.sh", "b") == "startup.sh"
    assert bucket_copy.bucket_name_from_arn("arn:aws-cn:s3:::my-bucket") == "my-bucket"


def test_dag_folder_prefix_ends_at_a_folder_boundary() -> None:
    prefix = bucket_copy.dags_prefix(full_environment())
    assert prefix == "airflow/dags/"
    sources = bucket_copy.dag_sources(
        prefix,
        ["airflow/dags/", "airflow/dags/a.py", "airflow/dags/sub/", "airflow/dags/sub/b.py"],
    )
    assert [(s.key, s.target_key) for s in sources] == [
        ("airflow/dags/a.py", "dags/a.py"),
        ("airflow/dags/sub/b.py", "dags/sub/b.py"),
    ]
    assert bucket_copy.dag_sources("dags/", ["dags_old/a.py"]) == ()


def test_named_files_carry_mwaa_pins_to_openmwaa_keys() -> None:
    sources = bucket_copy.named_sources(full_environment())
    assert [(s.key, s.version_id, s.target_key, s.pin_prop) for s in sources] == [
        (
            "airflow/requirements.txt",
            "req-v1",
            "requirements.txt",
            "requirements_s3_object_version",
        ),
        ("airflow/plugins.zip", "plg-v1", "plugins.zip", "plugins_s3_object_version"),
        ("airflow/startup.sh", "sta-v1", "startup.sh", "startup_script_s3_object_version"),
    ]


def test_plan_problems_name_the_bucket_and_the_object() -> None:
    source = SourceObject("PluginsS3Path", "plugins.zip", None, "plugins.zip", None)
    big = CopyItem(source, "v1", bucket_copy.MAX_COPY_OBJECT_BYTES + 1)
    problems = bucket_copy.plan_problems(CopyPlan("same", "same", (big,)))
    assert len(problems) == 2
    assert "MWAA's own bucket" in problems[0]
    assert "5 GB" in problems[1]
    assert bucket_copy.plan_problems(CopyPlan("a", "b", (CopyItem(source, "v1", 10),))) == []
