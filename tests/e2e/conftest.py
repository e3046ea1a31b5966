"""Fixtures of the end-to-end test: real Apache Airflow started from the task definitions.

The ``airflow`` fixture builds (once, cached) the Airflow venv with tools/airflow_venv.sh,
starts a throwaway PostgreSQL (shared by every environment of the session) and boots the
template on it with :func:`tests.e2e.running.boot`: a moto server (S3, SQS, Secrets Manager,
CloudWatch Logs) with the template's resources, and every Airflow component started with the
command, entry point, environment and secrets of its container definition, changed only as
:data:`tests.e2e.provision.LOCAL_SUBSTITUTIONS` lists (each in a mount namespace of its own
where MWAA's ``/usr/local/airflow`` is its task's volume: run as root). The modules in
:data:`FIRST_MODULES` (the versions, the upgrade, the MWAA compatibility suite, sign-in) boot
their own environments, one at a time, and run first, before the shared environment starts, so
two environments never compete for the machine's two cores.

The environment is started once per test session and shared by every end-to-end module (it
takes a minute or two to boot). Before each module, a component that a previous module stopped
(the worker SIGTERM test) is started again, so every module begins with all five running.
:attr:`AirflowUnderTest.sync_root` is the local stand-in for the EFS access point (the folder
the containers mount at ``OPENMWAA_SYNC_ROOT`` and the DAG sync Lambda at ``EFS_MOUNT_PATH``)
and :attr:`AirflowUnderTest.source_bucket` the source bucket on moto (versioned, as the
template declares).

Environment knobs: ``OPENMWAA_E2E_TEMPLATE`` (a synthesized template JSON file to run instead
of synthesizing app.py), ``OPENMWAA_E2E_PYTHON`` (the Python for the Airflow venv),
``OPENMWAA_E2E_PG_BIN`` (PostgreSQL's bin directory), ``OPENMWAA_E2E_KEEP`` (keep the work
directory with every component's log).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.airflow_venv import airflow_venv as cached_airflow_venv

from .cfn import resources_of_type
from .localenv import LocalPostgres, postgres_bin_dir
from .running import (
    COMPONENTS,
    SYNC_FIXTURE,
    AirflowUnderTest,
    MotoClients,
    boot,
    function_role,
    init_containers,
    shut_down,
)

__all__ = [
    "COMPONENTS",
    "SYNC_FIXTURE",
    "AirflowUnderTest",
    "MotoClients",
    "function_role",
    "init_containers",
]

FIRST_MODULES = (
    "test_versions_e2e.py",
    "test_upgrade_e2e.py",
    "test_mwaa_compat_e2e.py",
    "test_sign_in_e2e.py",
)
"""Modules that boot environments of their own: they run before the shared one starts."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the version modules' tests in front of every other end-to-end test."""
    first = [i for i in items if i.path.name in FIRST_MODULES]
    if not first:
        return
    rest = [i for i in items if i.path.name not in FIRST_MODULES]
    position = next((n for n, i in enumerate(rest) if "/tests/e2e/" in str(i.path)), len(rest))
    items[:] = rest[:position] + first + rest[position:]


@pytest.fixture(scope="session")
def e2e_template(request: pytest.FixtureRequest) -> tuple[dict[str, Any], str]:
    """The template whose task definitions the test runs, and where it came from."""
    path = os.environ.get("OPENMWAA_E2E_TEMPLATE")
    if path:
        return json.loads(Path(path).read_text()), path
    template: dict[str, Any] = request.getfixturevalue("default_template").to_json()
    if not resources_of_type(template, "AWS::ECS::TaskDefinition"):
        pytest.fail("app.py synthesizes no ECS task definition")
    return template, "app.py (synthesized)"


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """The cached Airflow venv (built on first use: about 2 minutes)."""
    return cached_airflow_venv()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL server; each environment gets its own login and database."""
    postgres = LocalPostgres(postgres_bin_dir())
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture(scope="session")
def airflow_session(
    e2e_template: tuple[dict[str, Any], str], airflow_venv: Path, postgres_server: LocalPostgres
) -> Iterator[AirflowUnderTest]:
    """Every Airflow component running from its container definition, once per session."""
    template, source = e2e_template
    work_dir = Path(tempfile.mkdtemp(prefix="openmwaa-e2e-"))
    env = boot(template, source, airflow_venv, postgres_server, work_dir=work_dir)
    try:
        yield env
    finally:
        shut_down(env)
        if os.environ.get("OPENMWAA_E2E_KEEP"):
            print(f"\nend-to-end work directory kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def airflow(airflow_session: AirflowUnderTest) -> AirflowUnderTest:
    """The shared running environment, with every component running when a module starts."""
    airflow_session.restart_exited()
    return airflow_session
