"""End to end: requirements are built once, by the template's build task, and a worker started
afterwards uses the built folder with no pip install, under IAM enforcement; the AWS CLI
(``awscli``, which the runtime adds to every environment's requirements) runs as ``aws`` on
the PATH the runtime gives Airflow.

The build task definition (OPENMWAA_COMPONENT=build-requirements) is run like the Airflow
tasks (its init container first, then the build container, from their definitions, with its
task role's and execution role's credentials; see conftest.py). The sync root's
requirements.txt names a package the image does not have; the worker is restarted from its
launch spec, must log that it used the prebuilt folder, must not run pip, and a task
importing the package must succeed. The module runs last (pytest orders modules by name) and
puts the fixture's requirements.txt back.

The boot ran the build of the fixture's requirements before any component started (as the DAG
sync does before the services roll), so no component pip-installed into the shared Airflow
venv: the test asserts awscli is not there, and ``aws`` is the build's. The AWS CLI's cost is
measured apart, in a scratch venv holding only what the image has of awscli's dependencies:
the runtime's own build with and without awscli, timed, and the folders' sizes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from openmwaa.runtime import requirements as runtime_requirements
from openmwaa.runtime.startup_steps import Settings, pip_install
from tools.airflow_venv import constraints_file

from .cfn import TaskSpec
from .conftest import SYNC_FIXTURE, AirflowUnderTest, init_containers
from .localenv import start_process
from .provision import launch_spec, volume_dirs
from .running import requirements_build_task
from .test_airflow_e2e import _task_instance, _trigger, _wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

REQUIREMENTS = "cowsay==6.1\n"
"""A small pure-Python package the Airflow image does not carry."""
DAG_ID = "openmwaa_e2e_requirements"
BUILD_TIMEOUT = 600.0


def _build_task(airflow: AirflowUnderTest) -> TaskSpec:
    task = requirements_build_task(airflow.template)
    assert task is not None, "expected one requirements build task definition"
    return task


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

    # the boot built the fixture's requirements (as the DAG sync does before services roll);
    # this build is the one of the changed file
    builds = airflow.sync_root / ".openmwaa" / "requirements"
    complete = [
        d
        for d in builds.iterdir()
        if (d / "openmwaa-build.json").is_file()
        and (d / "requirements.txt").read_text() == REQUIREMENTS + "awscli\n"
    ]
    assert len(complete) == 1, sorted(p.name for p in builds.iterdir())
    folder = complete[0]
    marker = json.loads((folder / "openmwaa-build.json").read_text())
    assert not _has_awscli(_site_packages(airflow.paths.airflow_venv)), (
        "a component pip-installed the AWS CLI into the Airflow venv: it did not find the build"
    )

    worker = airflow.processes["worker"]
    worker.stop(grace=30)
    airflow.restart_exited()
    log = airflow.processes["worker"].log_text()
    assert f"using the prebuilt folder {folder}" in log, log[-4000:]
    assert "installing requirements from" not in log, log[-4000:]
    assert "the AWS CLI is on PATH: " in log, log[-4000:]

    # aws on the PATH the runtime gives Airflow (and so a BashOperator): the build's bin first
    env = runtime_requirements.with_build(
        airflow.launches["worker"].env, str(folder), str(marker["python"])
    )
    aws = shutil.which("aws", path=env["PATH"])
    version = _aws_version(aws, env)
    assert aws == str(folder / "bin" / "aws")

    run_id = _trigger(airflow, DAG_ID)
    state = _wait_for_run(airflow, DAG_ID, run_id, timeout=300)
    assert state == "success", _task_instance(airflow, DAG_ID, run_id, "use_a_requirement")
    print(
        f"\nREQUIREMENTS_E2E build={build_seconds:.1f}s (one-shot task, {REQUIREMENTS.strip()} "
        f"and awscli); marker={marker}; aws={aws} ({version}); "
        "awscli not in the Airflow venv"
    )


def _site_packages(prefix: Path) -> Path:
    [found] = prefix.glob("lib/python*/site-packages")
    return found


def _has_awscli(site_packages: Path) -> bool:
    return any(site_packages.glob("awscli-*.dist-info"))


def _aws_version(aws: str | None, env: dict[str, str]) -> str:
    """``aws --version`` with ``env``; asserts it is AWS CLI v1."""
    assert aws, f"no aws on PATH {env['PATH']}"
    run = subprocess.run([aws, "--version"], env=env, capture_output=True, text=True, timeout=60)
    out = (run.stdout + run.stderr).strip()
    assert run.returncode == 0 and out.startswith("aws-cli/1."), out
    return out.split()[0]


def _du_kib(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _scratch_image(python: Path, where: Path, constraints: Path) -> Path:
    """A venv with what the Airflow image has of awscli's dependencies (the constraints file
    is the frozen list of the image's distributions): awscli installed with them, then every
    distribution the image lacks removed. Returns its python."""
    subprocess.run([str(python), "-m", "venv", str(where)], check=True, timeout=120)
    scratch = where / "bin" / "python"
    pip = [str(scratch), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "install", "-q", "awscli", "-c", str(constraints)], check=True, timeout=600
    )
    image = {
        _name(line.split("==")[0]) for line in constraints.read_text().splitlines() if "==" in line
    }
    listed = subprocess.run(
        [*pip, "list", "--format=json"], check=True, capture_output=True, text=True, timeout=120
    )
    extra = [
        d["name"]
        for d in json.loads(listed.stdout)
        if _name(d["name"]) not in image and _name(d["name"]) not in ("pip", "setuptools")
    ]
    subprocess.run([*pip, "uninstall", "-q", "-y", *extra], check=True, timeout=120)
    return scratch


def test_aws_cli_cost_in_the_requirements_build(airflow_venv: Path, tmp_path: Path) -> None:
    """The runtime's build of REQUIREMENTS (with the implicit awscli) against the same pip
    install of REQUIREMENTS alone, from a venv standing in for the image, no pip cache: the
    extra time and size are the AWS CLI's. aws then runs from the build's bin. Last, the
    install at start (no build yet) of both into that venv, timed."""
    constraints = constraints_file()
    python = _scratch_image(airflow_venv / "bin" / "python", tmp_path / "image", constraints)
    python_version = _site_packages(python.parent.parent).parent.name.removeprefix("python")
    env = {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OPENMWAA_CONSTRAINTS_URL": str(constraints),
        "OPENMWAA_AIRFLOW_VERSION": "3.3.2",
        "OPENMWAA_PYTHON_VERSION": python_version,
        "PIP_NO_CACHE_DIR": "1",
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_") and k != "PIP_USER"},
    }
    sync = tmp_path / "sync"
    sync.mkdir()
    (sync / "requirements.txt").write_text(REQUIREMENTS)
    settings = Settings("build-requirements", "3.3.2", 3, python_version, str(sync), "8080")

    alone = tmp_path / "alone"
    started = time.monotonic()
    code = pip_install(
        ["--prefix", str(alone), "-r", str(sync / "requirements.txt")],
        {**env, "PIP_USER": "false"},
        settings,
        BUILD_TIMEOUT,
        str(python),
    )
    alone_seconds = time.monotonic() - started
    assert code == 0

    started = time.monotonic()
    assert runtime_requirements.build_requirements(env, settings, str(python)) == 0
    build_seconds = time.monotonic() - started

    [folder] = [
        d for d in (sync / ".openmwaa" / "requirements").iterdir() if not d.name.startswith(".")
    ]
    built = sorted(p.name for p in _site_packages(folder).glob("*.dist-info"))
    assert any(name.startswith("awscli-") for name in built), built
    run_env = runtime_requirements.with_build(env, str(folder), python_version)
    aws = shutil.which("aws", path=run_env["PATH"])
    assert aws == str(folder / "bin" / "aws")
    version = _aws_version(aws, run_env)
    alone_kib, folder_kib = _du_kib(alone), _du_kib(folder)
    files = sum(1 for p in folder.rglob("*") if p.is_file())

    # the install at start before a build completes: the same pip run into the image's venv
    started = time.monotonic()
    code = pip_install(
        ["-r", str(sync / "requirements.txt"), "awscli"],
        {**env, "PIP_USER": "false"},
        settings,
        BUILD_TIMEOUT,
        str(python),
    )
    at_start_seconds = time.monotonic() - started
    assert code == 0
    print(
        f"\nAWS_CLI_COST build {build_seconds:.1f}s vs {alone_seconds:.1f}s without awscli "
        f"(+{build_seconds - alone_seconds:.1f}s); folder {folder_kib / 1024:.1f} MiB in "
        f"{files} files vs {alone_kib / 1024:.1f} MiB (+{(folder_kib - alone_kib) / 1024:.1f} "
        f"MiB); install at start with awscli {at_start_seconds:.1f}s; {version}; "
        f"added: {', '.join(name.removesuffix('.dist-info') for name in built)}"
    )
