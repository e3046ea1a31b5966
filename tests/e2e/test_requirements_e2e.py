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

The AWS CLI is not installed with requirements.txt: the build installs it on its own, without
Airflow's constraints (awscli pins docutils and rsa below what the image's constraints pin),
into the build folder's ``awscli/``, whose ``bin/aws`` runs it with its own packages alone;
that ``bin`` is last on the ``PATH`` the runtime gives Airflow.

The boot ran the build of the fixture's requirements before any component started (as the DAG
sync does before the services roll), so no component pip-installed into the shared Airflow
venv: the test asserts awscli is not there, and ``aws`` is the build's. The AWS CLI's cost is
measured apart, in a scratch venv standing in for the image (what it has of awscli's
dependencies, and docutils and rsa at the image's versions), with constraints pinning those
two as the image's do: the runtime's own build, timed against the same pip install of
requirements.txt alone, and the size of its ``awscli`` folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
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
        and (d / "requirements.txt").read_text() == REQUIREMENTS
    ]
    assert len(complete) == 1, sorted(p.name for p in builds.iterdir())
    folder = complete[0]
    marker = json.loads((folder / "openmwaa-build.json").read_text())
    assert "aws_cli_error" not in marker, marker
    assert not _has_awscli(_site_packages(airflow.paths.airflow_venv)), (
        "a component pip-installed the AWS CLI into the Airflow venv"
    )
    assert not _has_awscli(_site_packages(folder)), "awscli is on Airflow's PYTHONPATH"
    assert _has_awscli(_site_packages(folder / "awscli"))

    worker = airflow.processes["worker"]
    worker.stop(grace=30)
    airflow.restart_exited()
    log = airflow.processes["worker"].log_text()
    assert f"using the prebuilt folder {folder}" in log, log[-4000:]
    assert "installing requirements from" not in log, log[-4000:]
    assert f"the AWS CLI is on PATH: {folder}/awscli/bin/aws" in log, log[-4000:]

    # aws on the PATH the runtime gives Airflow (and so a BashOperator): the build's bin first,
    # its awscli/bin last
    env = runtime_requirements.with_aws_cli(
        runtime_requirements.with_build(
            airflow.launches["worker"].env, str(folder), str(marker["python"])
        ),
        str(builds),
        folder.name,
    )
    aws = shutil.which("aws", path=env["PATH"])
    version = _aws_version(aws, env)
    assert aws == str(folder / "awscli" / "bin" / "aws")

    run_id = _trigger(airflow, DAG_ID)
    state = _wait_for_run(airflow, DAG_ID, run_id, timeout=300)
    assert state == "success", _task_instance(airflow, DAG_ID, run_id, "use_a_requirement")
    print(
        f"\nREQUIREMENTS_E2E build={build_seconds:.1f}s (one-shot task, {REQUIREMENTS.strip()} "
        f"then awscli apart); marker={marker}; aws={aws} ({version}); "
        "awscli neither in the Airflow venv nor on its PYTHONPATH"
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


IMAGE_PINS = {"docutils": "0.21.2", "rsa": "4.9.1"}
"""What the stock image's Airflow constraints pin of awscli's dependencies, above what awscli
1.46 accepts (docutils<=0.19, rsa<4.8): a constrained install of awscli cannot resolve."""


def _image_constraints(lock: Path, where: Path) -> Path:
    """The lock (the frozen list of the image's distributions) with :data:`IMAGE_PINS`."""
    lines = [
        line
        for line in lock.read_text().splitlines()
        if _name(line.split("==")[0]) not in IMAGE_PINS
    ]
    lines += [f"{name}=={version}" for name, version in IMAGE_PINS.items()]
    where.write_text("\n".join(lines) + "\n")
    return where


def _scratch_image(python: Path, where: Path, constraints: Path) -> Path:
    """A venv with what the Airflow image has of awscli's dependencies (the constraints file
    is the frozen list of the image's distributions): awscli installed with them, then every
    distribution the image lacks removed, then :data:`IMAGE_PINS` installed, as the image has
    them. Returns its python."""
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
    pins = [f"{name}=={version}" for name, version in IMAGE_PINS.items()]
    subprocess.run([*pip, "install", "-q", *pins], check=True, timeout=600)
    return scratch


def _versions(site_packages: Path, names: Iterable[str]) -> str:
    """``name version`` of each of ``names`` installed in ``site_packages``."""
    found: dict[str, str] = {}
    for dist_info in site_packages.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[_name(name)] = version
    return ", ".join(f"{name} {found.get(name, 'absent')}" for name in names)


def test_aws_cli_cost_in_the_requirements_build(airflow_venv: Path, tmp_path: Path) -> None:
    """The runtime's build of REQUIREMENTS (then the implicit awscli, apart) against the same
    pip install of REQUIREMENTS alone, from a venv standing in for the image, with
    constraints pinning docutils and rsa as the image's do, no pip cache: the extra time is
    the AWS CLI's, and its size is the build's ``awscli`` folder. aws then runs from there."""
    lock = constraints_file()
    python = _scratch_image(airflow_venv / "bin" / "python", tmp_path / "image", lock)
    constraints = _image_constraints(lock, tmp_path / "image-constraints.txt")
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

    builds = sync / ".openmwaa" / "requirements"
    [folder] = [d for d in builds.iterdir() if not d.name.startswith(".")]
    marker = json.loads((folder / "openmwaa-build.json").read_text())
    assert "aws_cli_error" not in marker, marker
    assert (folder / "requirements.txt").read_text() == REQUIREMENTS
    assert not _has_awscli(_site_packages(folder)), "awscli is on Airflow's PYTHONPATH"
    cli = folder / "awscli"
    added = sorted(p.name for p in _site_packages(cli).glob("*.dist-info"))
    assert any(name.startswith("awscli-") for name in added), added
    run_env = runtime_requirements.with_aws_cli(
        runtime_requirements.with_build(env, str(folder), python_version), str(builds), folder.name
    )
    aws = shutil.which("aws", path=run_env["PATH"])
    assert aws == str(cli / "bin" / "aws")
    version = _aws_version(aws, run_env)
    alone_kib, folder_kib, cli_kib = _du_kib(alone), _du_kib(folder), _du_kib(cli)
    files = sum(1 for p in cli.rglob("*") if p.is_file())
    print(
        f"\nAWS_CLI_COST build {build_seconds:.1f}s vs {alone_seconds:.1f}s without awscli "
        f"(+{build_seconds - alone_seconds:.1f}s); awscli folder {cli_kib / 1024:.1f} MiB in "
        f"{files} files (build folder {folder_kib / 1024:.1f} MiB, requirements.txt alone "
        f"{alone_kib / 1024:.1f} MiB); {version}; constraints pin "
        f"{', '.join(f'{n} {v}' for n, v in IMAGE_PINS.items())}, awscli got "
        f"{_versions(_site_packages(cli), IMAGE_PINS)}; "
        f"added: {', '.join(name.removesuffix('.dist-info') for name in added)}"
    )
