"""End to end: every listed Airflow version and mw1.micro boot from their task definitions.

Besides the shared environment (Airflow 3.3.2 on mw1.small, every other module), this module
boots, one after the other on the session's PostgreSQL server:

- Airflow 2.11.2 on mw1.small: a webserver instead of the api-server, no execution-api, the
  standalone dag-processor, Celery over SQS;
- Airflow 3.3.2 on mw1.micro: every component a container of one task, the workers reaching
  the Task Execution API on localhost.

On each, the ``openmwaa_versions`` DAG runs on the Celery worker and its log is read back from
CloudWatch Logs: it shows the Airflow version, the package of requirements.txt (installed by
the start-up) and the variable startup.sh exported. The Airflow 2.11.2 environment's
connections, variables and pools are exported with its own CLI; the mw1.micro environment
(Airflow 3.3.2) imports them with ``openmwaa import-metadata`` through its REST API: the
documented 2-to-3 path (docs/migration.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openmwaa import EnvironmentClass
from tools.airflow_venv import airflow_venv

from .localenv import LocalPostgres
from .running import AirflowUnderTest, boot, shut_down
from .version_matrix import VERSION_ENVIRONMENTS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

AIRFLOW_2, MICRO = VERSION_ENVIRONMENTS

SYNC = Path(__file__).resolve().parent / "versions_sync"
DAG_ID = "openmwaa_versions"
BASIC_AUTH = (
    "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth,"
    "airflow.api.auth.backend.session"
)
"""Airflow 2's REST API takes only browser sessions unless told; the test calls it with the
admin user's password, as a user who sets `api.auth_backends` would."""


def _template(version: str, environment_class: str) -> dict[str, Any]:
    from aws_cdk import assertions

    from tests.stacks import deployable_stack

    props: dict[str, Any] = {
        "environment_name": "versions",
        "airflow_version": version,
        "environment_class": EnvironmentClass(environment_class),
    }
    if version.startswith("2."):
        props["airflow_configuration_options"] = {"api.auth_backends": BASIC_AUTH}
    template: dict[str, Any] = assertions.Template.from_stack(deployable_stack(**props)).to_json()
    return template


@pytest.fixture
def boot_version(postgres_server: LocalPostgres) -> Iterator[Any]:
    """Boots an environment of a version and class; shuts it down after the test."""
    started: list[tuple[AirflowUnderTest, Path]] = []

    def start(version: str, environment_class: str) -> AirflowUnderTest:
        work_dir = Path(tempfile.mkdtemp(prefix=f"openmwaa-e2e-{version}-{environment_class}-"))
        env = boot(
            _template(version, environment_class),
            f"Airflow {version} on {environment_class}",
            airflow_venv(version),
            postgres_server,
            work_dir=work_dir,
            sync_fixture=SYNC,
            database_prefix=f"v{version.replace('.', '_')}_{environment_class.replace('.', '_')}_",
            major=int(version.split(".")[0]),
        )
        started.append((env, work_dir))
        return env

    yield start
    for env, work_dir in started:
        shut_down(env)
        shutil.rmtree(work_dir, ignore_errors=True)


def _api(env: AirflowUnderTest) -> str:
    return "/api/v2" if env.major >= 3 else "/api/v1"


def run_dag(env: AirflowUnderTest, dag_id: str = DAG_ID, timeout: float = 420) -> str:
    """Trigger ``dag_id`` through the REST API; its run ID once the run succeeded."""
    api = _api(env)
    env.wait_for(
        f"DAG {dag_id} to be parsed", lambda: env.request("GET", f"{api}/dags/{dag_id}"), 240
    )
    body = {"logical_date": None} if env.major >= 3 else {"conf": {}}
    run_id: str = env.request("POST", f"{api}/dags/{dag_id}/dagRuns", body)["dag_run_id"]
    path = f"{api}/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def finished() -> str | None:
        state: str = env.request("GET", path)["state"]
        return state if state in ("success", "failed") else None

    state = env.wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout)
    assert state == "success", env.diagnostics()
    return run_id


def task_log(env: AirflowUnderTest, dag_id: str, run_id: str, task_id: str) -> str:
    """The task's log as the worker uploaded it to CloudWatch Logs."""
    stream = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log".replace(":", "_")
    logs = env.aws.client("logs")

    def text() -> str | None:
        try:
            events = logs.get_log_events(logGroupName=env.task_log_group, logStreamName=stream)
        except logs.exceptions.ResourceNotFoundException:
            return None
        joined = "\n".join(e["message"] for e in events["events"])
        return joined if "OPENMWAA_VERSIONS airflow=" in joined else None

    found: str = env.wait_for(f"the log of {task_id} in CloudWatch Logs", text, 120)
    return found


def assert_the_dag_ran_as_configured(env: AirflowUnderTest, version: str) -> None:
    run_id = run_dag(env)
    log = task_log(env, DAG_ID, run_id, "report")
    assert f"OPENMWAA_VERSIONS airflow={version}" in log
    assert "OPENMWAA_VERSIONS requirement=cowsay" in log
    assert "STARTUP_SH_MARK=exported-by-startup-sh-for-worker" in log
    worker_log = env.processes["worker"].log_text()
    assert "requirements: using the prebuilt folder" in worker_log, (
        "the worker did not take requirements.txt from the requirements build the boot ran"
    )


CONNECTION = {
    "conn_type": "postgres",
    "host": "warehouse.internal",
    "login": "etl",
    "password": "p@ss:/word with spaces",
    "schema": "analytics",
    "port": "5439",
    "extra": '{"sslmode": "require"}',
}


def _seed_and_export(env: AirflowUnderTest, out: Path) -> None:
    """Create a connection, a variable and a pool on Airflow 2, and export the three with its
    CLI, as docs/migration.md says (in the scheduler container)."""
    args = [f"--conn-{k.removeprefix('conn_')}={v}" for k, v in CONNECTION.items()]
    env.cli("connections", "add", "warehouse", *args)
    env.cli("variables", "set", "report_bucket", "s3://reports/daily")
    env.cli("variables", "set", "thresholds", json.dumps({"max_rows": 1000}))
    env.cli("pools", "set", "warehouse_pool", "4", "at most four warehouse queries")
    env.cli("connections", "export", str(out / "connections.json"), "--file-format", "json")
    env.cli("variables", "export", str(out / "variables.json"))
    env.cli("pools", "export", str(out / "pools.json"))


def _import_and_verify(env: AirflowUnderTest, out: Path) -> None:
    files = [f"--{kind}={out / f'{kind}.json'}" for kind in ("connections", "variables", "pools")]
    imported = subprocess.run(
        [
            sys.executable,
            "-m",
            "openmwaa.cli.main",
            "import-metadata",
            env.api_url,
            *files,
            "--username",
            env.admin_username,
            "--password-stdin",
        ],
        input=env.admin_password,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert CONNECTION["password"] not in imported.stdout + imported.stderr
    connection = json.loads(env.cli("connections", "get", "warehouse", "--output", "json"))
    got = connection[0] if isinstance(connection, list) else connection
    for key in ("conn_type", "host", "login", "password", "schema"):
        assert got[key] == CONNECTION[key], key
    assert str(got["port"]) == CONNECTION["port"]
    extra = got["extra_dejson"] if "extra_dejson" in got else json.loads(got["extra"])
    assert extra == {"sslmode": "require"}, got.keys()
    variable = env.request("GET", "/api/v2/variables/thresholds")["value"]
    assert json.loads(variable) == {"max_rows": 1000}
    assert env.request("GET", "/api/v2/variables/report_bucket")["value"] == "s3://reports/daily"
    pool = env.request("GET", "/api/v2/pools/warehouse_pool")
    assert (pool["slots"], pool["description"]) == (4, "at most four warehouse queries")


@pytest.fixture(scope="module")
def export_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-export-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_airflow_2_11_boots_runs_a_dag_and_exports_its_metadata(
    boot_version: Any, export_dir: Path
) -> None:
    env = boot_version(*AIRFLOW_2)

    assert set(env.processes) == {"scheduler", "dag-processor", "triggerer", "api-server", "worker"}
    assert_the_dag_ran_as_configured(env, AIRFLOW_2[0])
    assert "exec airflow webserver" in env.processes["api-server"].log_text()
    _seed_and_export(env, export_dir)
    exported = json.loads((export_dir / "connections.json").read_text())
    assert exported["warehouse"]["password"] == CONNECTION["password"]


def test_mw1_micro_boots_in_one_task_runs_a_dag_and_imports_airflow_2_metadata(
    boot_version: Any, export_dir: Path
) -> None:
    env = boot_version(*MICRO)

    tasks = {launch.cwd.parent.parent.name for launch in env.launches.values()}
    assert len(tasks) == 1, f"mw1.micro runs every component in one task, not {tasks}"
    execution_url = env.launches["worker"].template_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert urllib.parse.urlsplit(execution_url).hostname == "localhost"
    assert_the_dag_ran_as_configured(env, MICRO[0])
    if not (export_dir / "connections.json").exists():
        pytest.fail("the Airflow 2.11.2 test exports what this test imports: run the module")
    _import_and_verify(env, export_dir)
