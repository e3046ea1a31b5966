"""End to end: DAGs written for Amazon MWAA run unchanged (issue 16).

A suite of MWAA-style DAGs (``tests/e2e/mwaa_compat_sync/``, written for this test), one per
convention, each failing its task when the convention is not honoured:

- MWAA's paths: ``/usr/local/airflow/dags`` (a data folder beside the DAGs),
  ``/usr/local/airflow/plugins`` (a script of plugins.zip run by its path),
  ``/usr/local/airflow/requirements/requirements.txt``, ``/usr/local/airflow/startup/startup.sh``,
  and ``$AIRFLOW_HOME/dags`` and ``$AIRFLOW_HOME/plugins``;
- MWAA's variables: ``AIRFLOW_ENV_NAME`` read at parse time (an import error without it),
  ``MWAA_AIRFLOW_COMPONENT``/``MWAA_COMMAND`` (``worker`` in a task; ``scheduler`` where the
  dag-processor parses), ``AIRFLOW_VERSION``; startup.sh's export of a custom ``MWAA_`` name
  reaches the task, its override of ``AIRFLOW_ENV_NAME`` does not;
- AWS: ``aws_default`` is an ``aws`` connection, an S3Hook on it reads and writes the
  environment's bucket, the AWS CLI copies from and to it from a BashOperator; Variables and
  Connections come from Secrets Manager (``airflow/variables/``, ``airflow/connections/``);
- a helper module imported from the DAGs folder.

A negative control (a path and a variable nobody provides, checked the same ways) must fail,
so the suite cannot pass vacuously.

**Its own environment**, not the shared one: the S3 writes need a grant the bundled app does
not make (MWAA's execution role, like ours, only reads the source bucket), so the template is
app.py's shape plus the grant a user would add in CDK (``bucket.grant_read_write(
execution_role, "mwaa-compat/*")``), and every call runs under IAM enforcement with exactly
the template's policies, which the last test checks. Its startup.sh, requirements.txt and
plugins stay out of the shared fixture. The module runs before the shared environment boots
(conftest.py ``FIRST_MODULES``), so two environments never compete for the machine's cores;
it costs one more boot (about 2 minutes).

Each container runs in a mount namespace where its task's ``mwaa-home`` volume is bound at
``/usr/local/airflow`` (``LITERAL_MOUNTS`` in provision.py), as ECS mounts it: the DAGs use
MWAA's literal paths, and the init container's links there point at the local sync root.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openmwaa import EnvironmentClass

from .localenv import LocalPostgres
from .principals import ADMIN
from .running import AirflowUnderTest, boot, shut_down

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

SYNC = Path(__file__).resolve().parent / "mwaa_compat_sync"
ENVIRONMENT_NAME = "mwaa-compat"
DATA_PREFIX = "mwaa-compat/"
"""The bucket prefix the template grants the execution role read and write on (as a user
would for their DAGs' data); the input object lives there."""
INPUT_KEY = "mwaa-compat/input.txt"
INPUT_TEXT = "MWAA_COMPAT_S3_INPUT"

VARIABLE = ("airflow/variables/mwaa_compat_variable", "MWAA_COMPAT_VARIABLE_FROM_SECRETS_MANAGER")
CONNECTION = (
    "airflow/connections/mwaa_compat_connection",
    "postgres://etl:p%40ss%2Fword@warehouse.mwaa-compat.internal:5439/analytics",
)
"""The secrets the test creates before the runs; the DAG checks the values
(mwaa_compat_secrets.py). The connection as a URI, as MWAA's guide stores them."""

CONVENTIONS = {
    "mwaa_compat_dags_folder": "/usr/local/airflow/dags (cd into a folder beside the DAGs)",
    "mwaa_compat_plugins_folder": "/usr/local/airflow/plugins (a plugins.zip script by path)",
    "mwaa_compat_requirements_file": "/usr/local/airflow/requirements/requirements.txt",
    "mwaa_compat_startup_file": "/usr/local/airflow/startup/startup.sh",
    "mwaa_compat_airflow_home": (
        "$AIRFLOW_HOME/dags and $AIRFLOW_HOME/plugins (the folders /usr/local/airflow/dags "
        "and /plugins are)"
    ),
    "mwaa_compat_env_name": "AIRFLOW_ENV_NAME (read at parse time, compared in the task)",
    "mwaa_compat_component": "MWAA_AIRFLOW_COMPONENT and MWAA_COMMAND == worker in a task",
    "mwaa_compat_airflow_version": "AIRFLOW_VERSION == the installed Airflow",
    "mwaa_compat_startup_exports": (
        "startup.sh: a custom MWAA_ export reaches the task, an AIRFLOW_ENV_NAME override "
        "is ignored, startup.sh sees AIRFLOW_ENV_NAME"
    ),
    "mwaa_compat_aws_default": "aws_default is an aws connection",
    "mwaa_compat_s3_hook": "S3Hook(aws_conn_id='aws_default') reads and writes the bucket",
    "mwaa_compat_aws_cli": "the AWS CLI (aws s3 cp) from a BashOperator",
    "mwaa_compat_secrets_manager": "Variables and Connections from Secrets Manager",
    "mwaa_compat_helper_module": "a helper module imported from the DAGs folder",
}
"""DAG ID -> the MWAA convention it checks."""
NEGATIVE_CONTROL = "mwaa_compat_negative_control"
NEGATIVE_TASKS = {
    "missing_path": "/usr/local/airflow/not_an_mwaa_folder",
    "missing_variable": "MWAA_COMPAT_NOT_A_CONVENTION",
}
"""The negative control's tasks and what each log must name as the reason it failed."""

PARSE_TIMEOUT = 300.0
RUN_TIMEOUT = 600.0


def _template() -> dict[str, Any]:
    """app.py's stack shape, plus the grant a user adds for their DAGs' data."""
    from aws_cdk import assertions

    from openmwaa import AirflowEnvironment
    from tests.stacks import deployable_stack

    stack = deployable_stack(
        environment_name=ENVIRONMENT_NAME, environment_class=EnvironmentClass.MW1_SMALL
    )
    airflow = stack.node.find_child("Airflow")
    assert isinstance(airflow, AirflowEnvironment)
    airflow.bucket.grant_read_write(airflow.execution_role, f"{DATA_PREFIX}*")
    return dict(assertions.Template.from_stack(stack).to_json())


@dataclass
class Run:
    """One triggered DAG: its run, final state, and its task instances' states."""

    dag_id: str
    run_id: str = ""
    state: str = ""
    tasks: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # why it never ran (not parsed, trigger refused)


@dataclass
class Suite:
    env: AirflowUnderTest
    token: str
    runs: dict[str, Run]
    seconds: float


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _import_errors(env: AirflowUnderTest) -> str:
    try:
        errors = env.request("GET", "/api/v2/importErrors")["import_errors"]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
        return f"(import errors unavailable: {error})"
    return "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors) or "(none)"


def _parsed(env: AirflowUnderTest, dag_ids: list[str]) -> set[str]:
    """The DAG IDs the API knows, among ``dag_ids``, waiting up to PARSE_TIMEOUT for all."""
    deadline = time.monotonic() + PARSE_TIMEOUT
    known: set[str] = set()
    while time.monotonic() < deadline:
        env.assert_running()
        listed = env.request("GET", "/api/v2/dags?dag_id_pattern=mwaa_compat&limit=100")
        known = {d["dag_id"] for d in listed["dags"]} & set(dag_ids)
        if known == set(dag_ids):
            break
        time.sleep(3)
    return known


def _trigger_all(env: AirflowUnderTest, token: str) -> dict[str, Run]:
    dag_ids = [*CONVENTIONS, NEGATIVE_CONTROL]
    runs = {dag_id: Run(dag_id) for dag_id in dag_ids}
    known = _parsed(env, dag_ids)
    conf = {"environment_name": ENVIRONMENT_NAME, "bucket": env.source_bucket, "token": token}
    errors = _import_errors(env) if known != set(dag_ids) else ""
    for dag_id, run in runs.items():
        if dag_id not in known:
            run.problem = f"never parsed in {PARSE_TIMEOUT:.0f} s; import errors:\n{errors}"
            continue
        body = {"logical_date": None, "conf": conf}
        run.run_id = env.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]
    return runs


def _wait_all(env: AirflowUnderTest, runs: dict[str, Run]) -> None:
    pending = [r for r in runs.values() if r.run_id]

    def finished() -> bool:
        for run in list(pending):
            state = env.request("GET", _run_path(run.dag_id, run.run_id))["state"]
            if state in ("success", "failed"):
                run.state = state
                pending.remove(run)
        return not pending

    env.wait_for("every MWAA compatibility DAG run to finish", finished, RUN_TIMEOUT, 3)
    for run in runs.values():
        if run.run_id:
            listed = env.request("GET", f"{_run_path(run.dag_id, run.run_id)}/taskInstances")
            run.tasks = {t["task_id"]: str(t["state"]) for t in listed["task_instances"]}


@pytest.fixture(scope="module")
def suite(postgres_server: LocalPostgres, airflow_venv: Path) -> Iterator[Suite]:
    """The environment booted from the template with the suite as its sync root, the input
    object and the secrets created, and every suite DAG run once (all at once)."""
    work_dir = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-mwaa-compat-"))
    env = boot(
        _template(),
        f"Airflow 3.3.2 on mw1.small ({ENVIRONMENT_NAME}, with a data grant)",
        airflow_venv,
        postgres_server,
        work_dir=work_dir,
        sync_fixture=SYNC,
        database_prefix="mwaa_compat_",
    )
    try:
        s3 = env.aws.client("s3")
        s3.put_object(Bucket=env.source_bucket, Key=INPUT_KEY, Body=INPUT_TEXT.encode())
        secrets = env.aws.client("secretsmanager")
        for name, value in (VARIABLE, CONNECTION):
            secrets.create_secret(Name=name, SecretString=value)
        token = uuid.uuid4().hex
        started = time.monotonic()
        runs = _trigger_all(env, token)
        _wait_all(env, runs)
        seconds = time.monotonic() - started
        print(f"\nMWAA_COMPAT_E2E {len(runs)} DAGs parsed, run and finished in {seconds:.0f} s")
        yield Suite(env, token, runs, seconds)
    finally:
        shut_down(env)
        if os.environ.get("OPENMWAA_E2E_KEEP"):
            print(f"\nMWAA compatibility work directory kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


def task_log(env: AirflowUnderTest, run: Run, task_id: str, lines: int = 40) -> str:
    """The tail of a task's log as the worker uploaded it to CloudWatch Logs (the REST API's
    copy if it is not there)."""
    stream = f"dag_id={run.dag_id}/run_id={run.run_id}/task_id={task_id}/attempt=1.log"
    logs = env.aws.client("logs")
    text = ""
    deadline = time.monotonic() + 60
    while not text and time.monotonic() < deadline:
        try:
            events = logs.get_log_events(
                logGroupName=env.task_log_group, logStreamName=stream.replace(":", "_")
            )["events"]
            text = "\n".join(e["message"] for e in events)
        except logs.exceptions.ResourceNotFoundException:
            time.sleep(2)  # the worker uploads the log when the task process ends
    if not text:
        try:
            path = f"{_run_path(run.dag_id, run.run_id)}/taskInstances/{task_id}/logs/1"
            text = str(env.request("GET", path)["content"])
        except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
            return f"(no log in CloudWatch Logs or the REST API: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _failure(suite: Suite, run: Run, convention: str) -> str:
    if run.problem:
        return f"MWAA convention not honoured: {convention}: DAG {run.dag_id} {run.problem}"
    parts = [f"MWAA convention not honoured: {convention}: DAG {run.dag_id} run {run.state}"]
    for task_id, state in run.tasks.items():
        if state != "success":
            parts.append(f"--- task {task_id}: {state} ---\n{task_log(suite.env, run, task_id)}")
    return "\n".join(parts)


@pytest.mark.parametrize("dag_id", list(CONVENTIONS))
def test_mwaa_convention_is_honoured(suite: Suite, dag_id: str) -> None:
    run = suite.runs[dag_id]

    ok = run.state == "success" and run.tasks and set(run.tasks.values()) == {"success"}

    assert ok, _failure(suite, run, CONVENTIONS[dag_id])


def test_the_negative_control_fails_for_the_reason_it_checks(suite: Suite) -> None:
    """A convention DAG can fail: the same checks against what nobody provides fail."""
    run = suite.runs[NEGATIVE_CONTROL]

    assert not run.problem, run.problem
    assert run.state == "failed", f"the negative control's run is {run.state}: {run.tasks}"
    assert run.tasks == dict.fromkeys(NEGATIVE_TASKS, "failed"), run.tasks
    for task_id, reason in NEGATIVE_TASKS.items():
        log = task_log(suite.env, run, task_id, lines=400)
        assert reason in log, f"{task_id} failed, but its log does not name {reason}:\n{log}"


def test_the_dag_processor_parses_with_mwaa_variables(suite: Suite) -> None:
    """Parse-time values, as the dag-processor saw them (MWAA runs it in its scheduler)."""
    dag = suite.env.request("GET", "/api/v2/dags/mwaa_compat_env_name")

    assert dag["description"] == (
        f"AIRFLOW_ENV_NAME={ENVIRONMENT_NAME} MWAA_AIRFLOW_COMPONENT=scheduler"
    ), dag["description"]


def test_the_writes_reached_the_environments_bucket(suite: Suite) -> None:
    s3 = suite.env.aws.client("s3")
    expected = {
        f"{DATA_PREFIX}s3hook/{suite.token}.txt": f"written by S3Hook {suite.token}",
        f"{DATA_PREFIX}cli/{suite.token}.txt": f"written by the AWS CLI {suite.token}\n",
    }
    found = {}
    for key in expected:
        try:
            found[key] = s3.get_object(Bucket=suite.env.source_bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            found[key] = None

    missing = {k: v for k, v in expected.items() if found[k] != v.encode()}
    assert not missing, f"not in s3://{suite.env.source_bucket}: {sorted(missing)} ({found})"


def test_startup_scripts_reserved_override_is_logged_as_ignored(suite: Suite) -> None:
    for component in ("scheduler", "worker"):
        log = suite.env.processes[component].log_text()
        assert "startup script may not change AIRFLOW_ENV_NAME: ignored" in log, component


def test_the_dags_aws_calls_were_allowed_by_the_execution_role(suite: Suite) -> None:
    """Every call of the environment's roles was allowed by the template's policies, and the
    DAGs' S3 and Secrets Manager calls are among them."""
    env = suite.env
    roles = set(env.principals) - {ADMIN}
    decisions = [d for d in env.decisions() if d["principal"] in roles]
    denied = sorted(
        {(d["principal"], d["action"], d["resource"]) for d in decisions if not d["allowed"]}
    )
    made = {(d["action"], d["resource"]) for d in decisions if d["allowed"]}
    bucket = f"arn:aws:s3:::{env.source_bucket}/"
    wanted = {
        ("s3:GetObject", f"{bucket}{INPUT_KEY}"),
        ("s3:PutObject", f"{bucket}{DATA_PREFIX}s3hook/{suite.token}.txt"),
    }

    assert denied == [], "calls the template's policies do not allow"
    assert wanted <= made, sorted(wanted - made)
    secret_reads = {r for a, r in made if a == "secretsmanager:GetSecretValue"}
    for name, _ in (VARIABLE, CONNECTION):
        assert any(f":secret:{name}" in r for r in secret_reads), (name, sorted(secret_reads))
    print(f"\nMWAA_COMPAT_E2E {len(decisions)} calls of the environment's roles, none denied")
    print(json.dumps({d: r.state for d, r in suite.runs.items()}, indent=1))
