"""What DAGs written for MWAA expect of their container (openmwaa.runtime.mwaa_conventions)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from openmwaa.runtime import config, contracts, mwaa_conventions
from openmwaa.runtime.mwaa_conventions import (
    home_link_plan,
    is_reserved,
    link_airflow_home,
    mwaa_variables,
)


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        ("scheduler", "scheduler"),
        ("dag-processor", "scheduler"),
        ("triggerer", "scheduler"),
        ("api-server", "webserver"),
        ("execution-api", "webserver"),
        ("worker", "worker"),
    ],
)
def test_component_is_named_as_mwaa_names_its_container(component: str, expected: str) -> None:
    env = {"OPENMWAA_COMPONENT": component, "OPENMWAA_ENVIRONMENT_NAME": "prod-etl"}

    variables = mwaa_variables(env, "3.3.2")

    assert variables["MWAA_AIRFLOW_COMPONENT"] == expected
    assert variables["MWAA_COMMAND"] == expected
    assert variables["AIRFLOW_ENV_NAME"] == "prod-etl"


def test_every_component_has_an_mwaa_name() -> None:
    assert set(mwaa_conventions.MWAA_COMPONENTS) == set(contracts.COMPONENTS)


def test_aws_default_and_airflow_version_are_defaults_the_environment_may_set() -> None:
    env = {"OPENMWAA_COMPONENT": "worker", "OPENMWAA_ENVIRONMENT_NAME": "e"}

    assert mwaa_variables(env, "3.3.2")["AIRFLOW_CONN_AWS_DEFAULT"] == "aws://"
    assert mwaa_variables(env, "3.3.2")["AIRFLOW_VERSION"] == "3.3.2"
    given = {
        **env,
        "AIRFLOW_CONN_AWS_DEFAULT": "aws://?region_name=eu-west-1",
        "AIRFLOW_VERSION": "3.3.2",
    }
    assert "AIRFLOW_CONN_AWS_DEFAULT" not in mwaa_variables(given, "3.3.2")
    assert "AIRFLOW_VERSION" not in mwaa_variables(given, "3.3.2")


def test_build_task_gets_no_mwaa_component() -> None:
    env = {"OPENMWAA_COMPONENT": "build-requirements", "OPENMWAA_ENVIRONMENT_NAME": "e"}

    assert "MWAA_AIRFLOW_COMPONENT" not in mwaa_variables(env, "3.3.2")


@pytest.mark.parametrize(
    "name",
    [
        "AIRFLOW_ENV_NAME",
        "AIRFLOW_ENV_ID",
        "AIRFLOW_HOME",
        "AIRFLOW_VERSION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "MWAA_AIRFLOW_COMPONENT",
        "MWAA_COMMAND",
        "MWAA__CORE__REQUIREMENTS_PATH",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "ECS_AGENT_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "OPENMWAA_COMPONENT",
        "openmwaa_component",
    ],
)
def test_mwaa_reserved_names_are_reserved(name: str) -> None:
    assert is_reserved(name)


@pytest.mark.parametrize(
    "name",
    [
        "MWAA_MY_FLAG",
        "MWAA_ENV_STAGE",
        "PATH",
        "LD_LIBRARY_PATH",
        "CLASSPATH",
        "JAVA_HOME",
        "AIRFLOW_CONN_AWS_DEFAULT",
        "AIRFLOW_CONN_MY_DB",
        "AIRFLOW_VAR_X",
    ],
)
def test_names_mwaa_leaves_to_startup_sh_are_not_reserved(name: str) -> None:
    assert not is_reserved(name)


def test_startup_exports_follow_mwaa_reserved_names() -> None:
    before = {"AIRFLOW_ENV_NAME": "prod", "MWAA_AIRFLOW_COMPONENT": "worker", "PYTHONPATH": "/a"}
    after = {
        "AIRFLOW_ENV_NAME": "other",
        "MWAA_AIRFLOW_COMPONENT": "scheduler",
        "PYTHONPATH": "/b",
        "MWAA_MY_FLAG": "1",
        "AIRFLOW_CONN_AWS_DEFAULT": "aws://?region_name=eu-west-1",
    }

    changes, removed, rejected = config.filter_startup_exports(before, after)

    assert changes == {
        "MWAA_MY_FLAG": "1",
        "AIRFLOW_CONN_AWS_DEFAULT": "aws://?region_name=eu-west-1",
    }
    assert removed == []
    assert rejected == ["AIRFLOW_ENV_NAME", "MWAA_AIRFLOW_COMPONENT", "PYTHONPATH"]


def test_home_link_plan(tmp_path: Path) -> None:
    target = str(tmp_path / "sync" / "dags")
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    full.mkdir()
    (full / "baked.py").write_text("x = 1\n")
    linked = tmp_path / "linked"
    linked.symlink_to(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.symlink_to("/somewhere/else")
    a_file = tmp_path / "file"
    a_file.write_text("")

    assert home_link_plan(str(tmp_path / "absent"), target) == "link"
    assert home_link_plan(str(empty), target) == "replace"
    assert home_link_plan(str(linked), target) == "done"
    assert home_link_plan(str(full), target) == "keep"
    assert home_link_plan(str(elsewhere), target) == "keep"
    assert home_link_plan(str(a_file), target) == "keep"


def test_airflow_home_dags_and_plugins_lead_to_the_sync_root(tmp_path: Path) -> None:
    home, sync = tmp_path / "opt-airflow", tmp_path / "sync"
    (home / "dags").mkdir(parents=True)
    (sync / "dags").mkdir(parents=True)
    (sync / "dags" / "etl.py").write_text("dag = 1\n")

    link_airflow_home({"AIRFLOW_HOME": str(home)}, str(sync))
    link_airflow_home({"AIRFLOW_HOME": str(home)}, str(sync))

    assert (home / "dags" / "etl.py").read_text() == "dag = 1\n"
    assert os.readlink(home / "dags") == str(sync / "dags")
    assert os.readlink(home / "plugins") == str(sync / "plugins")


def test_airflow_home_with_the_images_own_dags_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "opt-airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "baked.py").write_text("x = 1\n")

    with caplog.at_level(logging.WARNING):
        link_airflow_home({"AIRFLOW_HOME": str(home)}, str(tmp_path / "sync"))

    assert (home / "dags").is_dir() and not (home / "dags").is_symlink()
    assert "not empty: left as the image made it" in caplog.text


def test_unwritable_airflow_home_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        link_airflow_home({"AIRFLOW_HOME": str(tmp_path / "missing" / "home")}, "/sync")

    assert "cannot link" in caplog.text
