"""End to end: an in-place minor upgrade, 3.2.2 to 3.3.2, as an ECS rolling deploy runs it.

An environment of Airflow 3.2.2 runs a DAG and gets a connection and a variable. Then its
template is synthesized again with ``airflow_version="3.3.2"`` (the same resources, new task
definitions) and started the way a rolling deploy starts it: two new schedulers come up while
the old components still run (ECS starts the new tasks first), the old ones are stopped once
the new scheduler tasks are running (as ECS does: they have no health check), then the other
new components start. The test shows that:

- no new scheduler migrates while an old component's job is alive (the upgrade gate in the
  runtime waits for them);
- the database is migrated exactly once, though two schedulers start;
- the DAG run history, the connection and the variable survive, and a DAG runs on 3.3.2.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openmwaa import EnvironmentClass
from tools.airflow_venv import airflow_venv

from .localenv import LocalPostgres, start_process
from .running import (
    STOP_ORDER,
    AirflowUnderTest,
    boot,
    relaunch,
    run_init_containers,
    shut_down,
    start_components,
    wait_healthy,
)
from .test_versions_e2e import DAG_ID, SYNC, run_dag, task_log
from .version_matrix import UPGRADE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

OLD, NEW = UPGRADE
MIGRATING = "migrating the metadata database"
MIGRATED = "metadata database migrated"
NOTHING_TO_MIGRATE = "nothing to migrate"
WAITING = "waiting for"


def _template(version: str) -> dict[str, Any]:
    from aws_cdk import assertions

    from tests.stacks import deployable_stack

    stack = deployable_stack(
        environment_name="upgrade",
        airflow_version=version,
        environment_class=EnvironmentClass.MW1_SMALL,
    )
    template: dict[str, Any] = assertions.Template.from_stack(stack).to_json()
    return template


@pytest.fixture(scope="module")
def upgraded(postgres_server: LocalPostgres) -> Iterator[AirflowUnderTest]:
    work_dir = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-upgrade-"))
    env = boot(
        _template(OLD),
        f"Airflow {OLD} on mw1.small",
        airflow_venv(OLD),
        postgres_server,
        work_dir=work_dir,
        sync_fixture=SYNC,
        database_prefix="upgrade_",
    )
    try:
        yield env
    finally:
        shut_down(env)
        shutil.rmtree(work_dir, ignore_errors=True)


def _revision(env: AirflowUnderTest) -> str:
    return env.postgres.sql(
        "SELECT version_num FROM alembic_version", database="upgrade_airflow"
    ).strip()


def test_a_minor_upgrade_migrates_once_after_the_old_components_stop(
    upgraded: AirflowUnderTest,
) -> None:
    env = upgraded
    first_run = run_dag(env)
    env.cli("connections", "add", "warehouse", "--conn-uri", "postgres://etl:pw@wh:5439/db")
    env.request("POST", "/api/v2/variables", {"key": "report_bucket", "value": "s3://r/d"})
    revision_before = _revision(env)
    old = dict(env.processes)

    launches = relaunch(env, _template(NEW), airflow_venv(NEW))
    run_init_containers(launches, env.logs_dir, label="init-upgrade")
    start_components(env, ("scheduler",), suffix="-new")
    second = env.launches["scheduler"]
    second_scheduler = start_process(
        "scheduler-2",
        second.argv,
        second.env,
        env.logs_dir / "scheduler-2-new.log",
        str(second.cwd),
    )
    schedulers = (env.processes["scheduler"], second_scheduler)
    try:
        env.wait_for(
            "a new scheduler to wait for the old components",
            lambda: any(WAITING in s.log_text() and "alive" in s.log_text() for s in schedulers),
            timeout=300,
            interval=1,
        )
        assert _revision(env) == revision_before, "migrated while old components were alive"
        for name in STOP_ORDER:
            old[name].stop(grace=30)
        old_stopped = time.time()

        start_components(env, tuple(c for c in env.components if c != "scheduler"), "-new")
        env._token = ""
        wait_healthy(env)

        logs = [s.log_text() for s in schedulers]
        assert sum(MIGRATED in log for log in logs) == 1, logs
        assert sum(NOTHING_TO_MIGRATE in log for log in logs) == 1, logs
        assert _revision(env) != revision_before
        started_at = _log_time(next(log for log in logs if MIGRATING in log), MIGRATING)
        assert started_at >= int(old_stopped) - 1, "the migration began before the old ones stopped"

        runs = env.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
        assert [r["state"] for r in runs if r["dag_run_id"] == first_run] == ["success"]
        assert "wh" in env.cli("connections", "get", "warehouse", "--output", "json")
        assert env.request("GET", "/api/v2/variables/report_bucket")["value"] == "s3://r/d"
        new_run = run_dag(env)
        assert f"OPENMWAA_VERSIONS airflow={NEW}" in task_log(env, DAG_ID, new_run, "report")
    finally:
        second_scheduler.stop(grace=30)
        for process in old.values():
            process.stop(grace=5)


def _log_time(log: str, marker: str) -> float:
    """The epoch time of the bootstrap's log line holding ``marker``."""
    for line in log.splitlines():
        if marker in line:
            stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", line)
            if stamp:
                return time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S"))
    raise AssertionError(f"no timestamped line with {marker!r}")
