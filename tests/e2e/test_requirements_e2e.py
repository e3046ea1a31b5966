"""End to end: requirements are built once, by the template's build task, and a worker started
afterwards uses the built folder with no pip install, under IAM enforcement.

The build task definition (OPENMWAA_COMPONENT=build-requirements) is run like the Airflow
tasks (its init container first, then the build container, from their definitions, with its
task role's and execution role's credentials; see conftest.py). The sync root's
requirements.txt names a package the image does not have; the worker is restarted from its
launch spec, must log that it used the prebuilt folder, must not run pip, and a task
importing the package must succeed. The module runs last (pytest orders modules by name) and
puts the fixture's requirements.txt back.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from .cfn import TaskSpec, task_specs
from .conftest import SYNC_FIXTURE, AirflowUnderTest, init_containers
from .localenv import start_process
from .provision import launch_spec, volume_dirs
from .test_airflow_e2e import _task_instance, _trigger, _wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

REQUIREMENTS = "cowsay==6.1\n"
"""A small pure-Python package the Airflow image does not carry."""
DAG_ID = "openmwaa_e2e_requirements"
BUILD_TIMEOUT = 600.0


def _build_task(airflow: AirflowUnderTest) -> TaskSpec:
    tasks = [
        t
        for t in task_specs(airflow.template)
        if any(c.component == "build-requirements" for c in t.containers)
    ]
    assert len(tasks) == 1, "expected one requirements build task definition"
    return tasks[0]


def _run(airflow: AirflowUnderTest, task: TaskSpec, name: str, log: Path, timeout: float) -> int:
    """Run one container of ``task`` to completion from its definition; its exit code."""
    assert task.task_role and task.execution_role
    secrets = airflow.aws.client("secretsmanager", airflow.principals[task.execution_role])

    def read_secret(arn: str) -> str:
        value: str = secrets.get_secret_value(SecretId=arn)["SecretString"]
        return value

    spec = launch_spec(
        task,
        task.container(name),
        airflow.provisioned,
        airflow.template,
        airflow.paths,
        volume_dirs(task, airflow.paths),
        airflow.principals[task.task_role],
        read_secret,
    )
    process = start_process(name, spec.argv, spec.env, log, str(spec.cwd))
    try:
        return process.popen.wait(timeout)
    finally:
        process.stop(grace=5)


@pytest.fixture
def built_requirements(airflow: AirflowUnderTest) -> Any:
    requirements = airflow.sync_root / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    yield requirements
    shutil.copyfile(SYNC_FIXTURE / "requirements.txt", requirements)


def test_worker_uses_the_requirements_build_and_runs_no_pip(
    airflow: AirflowUnderTest, built_requirements: Path
) -> None:
    task = _build_task(airflow)
    logs = airflow.work_dir / "logs"
    for name in init_containers(task):
        assert _run(airflow, task, name, logs / f"build-init-{name}.log", 60) == 0
    started = time.monotonic()
    build_log = logs / "requirements-build.log"
    code = _run(airflow, task, "build-requirements", build_log, BUILD_TIMEOUT)
    build_seconds = time.monotonic() - started
    assert code == 0, build_log.read_text()[-4000:]

    builds = airflow.sync_root / ".openmwaa" / "requirements"
    complete = [d for d in builds.iterdir() if (d / "openmwaa-build.json").is_file()]
    assert len(complete) == 1, sorted(p.name for p in builds.iterdir())
    marker = json.loads((complete[0] / "openmwaa-build.json").read_text())

    worker = airflow.processes["worker"]
    worker.stop(grace=30)
    airflow.restart_exited()
    log = airflow.processes["worker"].log_text()
    assert f"using the prebuilt folder {complete[0]}" in log, log[-4000:]
    assert "installing requirements from" not in log, log[-4000:]

    run_id = _trigger(airflow, DAG_ID)
    state = _wait_for_run(airflow, DAG_ID, run_id, timeout=300)
    assert state == "success", _task_instance(airflow, DAG_ID, run_id, "use_a_requirement")
    print(
        f"\nREQUIREMENTS_E2E build={build_seconds:.1f}s (one-shot task, {REQUIREMENTS.strip()}); "
        f"marker={marker}"
    )
