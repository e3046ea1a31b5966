"""The entry point of every openmwaa Airflow container.

The container command unpacks this package from ``$OPENMWAA_RUNTIME`` and runs it with the
image's Python. In order, each step with a hard limit (as MWAA):

1. configure Airflow from the ECS secrets and variables (:mod:`.config`); fatal if incomplete;
   add what MWAA gives DAGs (:mod:`.mwaa_conventions`): its variables, and the image's
   ``$AIRFLOW_HOME/dags`` and ``/plugins`` as links into the sync root;
2. scheduler and worker: make sure kombu can reach SQS (pycurl, only for kombu < 5.5);
3. ``startup.sh`` from the sync root, sourced in bash with ``MWAA_AIRFLOW_COMPONENT`` set,
   5 minutes at most; the variables it exports reach Airflow unless MWAA reserves them or
   they are protected options;
4. ``requirements.txt`` from the sync root: the folder the one-shot requirements build made
   for it (``.openmwaa/requirements/<key>``, see :func:`requirements_key`) goes first on
   ``PYTHONPATH`` and ``PATH``; while that build runs, or if it failed, they are pip-installed
   into the image's environment with the running Airflow's constraints, 9 minutes at most (a
   failure is logged, not fatal);
5. scheduler: nothing if the metadata database is at this Airflow's migration head; else,
   once no older component is alive (:mod:`.upgrade_gate`), under the schedulers' advisory
   lock, check again and ``airflow db migrate``, so several schedulers migrate once; fatal for
   a database a newer Airflow migrated; other components wait until migrations are done;
6. api-server: the sign-in from ``OPENMWAA_SIGN_IN`` (:mod:`.sign_in`: Airflow's
   ``webserver_config.py`` and its options; fatal if invalid); with the FAB auth manager, in
   one Airflow process (:mod:`.machine_users`), create the admin user or set its role and
   password to the secret's, and with ``OPENMWAA_MACHINE_KEY`` the machine users likewise;
7. run the component: ``exec`` into Airflow, except the worker, where this process stays the
   parent of ``airflow celery worker`` to forward SIGTERM (Celery's warm shutdown: stop
   consuming, finish running tasks) and to keep ECS task scale-in protection in step; Celery
   loads its configuration from :mod:`.celery_signals` (protection on task receipt).

Before step 1, with ``OPENMWAA_METRICS`` saying ``"relay": true``, the metrics relay
(:mod:`.metrics_relay`) starts as a child in this process group, so it gets the SIGTERM
dumb-init forwards, and early, so it also hears the task's other containers while this one is
in its start-up steps; a relay that cannot start is logged and Airflow runs without it.

A fatal error is logged and the process exits non-zero; ECS then replaces the task.

With ``OPENMWAA_COMPONENT=build-requirements`` it is the one-shot requirements build instead
(:func:`.requirements.build_requirements`); with the argument ``metrics-relay`` it is the
metrics relay (:func:`.metrics_relay.main`).

This module is the entry point and the order of the steps. The steps are in
:mod:`.startup_steps` and :mod:`.requirements`, the child processes and the worker's signals
in :mod:`.supervisor`. Standard library only: it runs inside the stock Apache Airflow image.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import NoReturn

from . import config, contracts, metrics_relay, sign_in
from .config import ConfigError
from .contracts import (
    API_SERVER,
    BUILD_REQUIREMENTS,
    REQUIREMENTS_KEY,
    SCHEDULER,
    STARTUP_SCRIPT_KEY,
    WORKER,
)
from .machine_users import ensure_users, fab_users
from .mwaa_conventions import link_airflow_home, mwaa_variables
from .requirements import build_requirements, install_requirements
from .startup_steps import (
    FatalError,
    Settings,
    configure_sign_in,
    ensure_pycurl,
    ld_preload,
    migrate_database,
    needs_admin_user,
    read_settings,
    run_startup_script,
    wait_for_migrations,
    with_python_path,
)
from .supervisor import Monitor, load_monitor, supervise

LOG = logging.getLogger("openmwaa.bootstrap")


def runtime_import_root() -> str:
    """The sys.path entry this package is imported from: the zip application on ECS."""
    root = os.path.abspath(__file__)
    for _ in range(__name__.count(".") + 1):
        root = os.path.dirname(root)
    return root


def worker_celery_env(env: Mapping[str, str], root: str, package: str) -> dict[str, str]:
    """What the worker's Celery needs to load :mod:`.celery_signals`: the runtime on
    ``PYTHONPATH`` (after the user's) and ``[celery] celery_config_options`` naming it."""
    return {
        "PYTHONPATH": with_python_path(env, root),
        config.env_name("celery.celery_config_options"): f"{package}.celery_signals.CELERY_CONFIG",
    }


METRICS_RELAY = "metrics-relay"
"""The argument that runs the metrics relay instead of the bootstrap."""


def metrics_relay_command(python: str, root: str, package: str) -> list[str]:
    """The relay's command: the zip application itself on ECS (``root`` is the zip), else the
    package as a module (``root`` then goes on ``PYTHONPATH``)."""
    if os.path.isfile(root):
        return [python, root, METRICS_RELAY]
    return [python, "-m", package, METRICS_RELAY]


def start_metrics_relay(
    env: Mapping[str, str],
    python: str,
    popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
) -> subprocess.Popen[bytes] | None:
    """Start the metrics relay if ``OPENMWAA_METRICS`` asks this container for it; None when
    it does not, or when the relay cannot start (logged: Airflow runs without metrics)."""
    try:
        metrics = config.parse_metrics(env.get(contracts.METRICS_VARIABLE))
    except ConfigError as error:
        LOG.error("metrics relay not started: %s", error)
        return None
    if metrics is None or not metrics.relay:
        return None
    root = runtime_import_root()
    relay_env = {k: v for k, v in env.items() if k not in config.RAW_SECRET_VARIABLES}
    relay_env["PYTHONPATH"] = with_python_path(relay_env, root)
    command = metrics_relay_command(python, root, __package__ or "")
    try:
        proc = popen(command, env=relay_env, stdin=subprocess.DEVNULL)
    except OSError as error:
        LOG.error("metrics relay not started: %s", error)
        return None
    LOG.info("metrics relay started (pid %d)", proc.pid)
    return proc


def stop_metrics_relay(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """Have the relay publish what is left and exit (SIGUSR1), ``timeout`` seconds at most:
    the container stops as soon as this process exits."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGUSR1)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def installed_airflow_version() -> str | None:
    """The installed apache-airflow (or apache-airflow-core) version, if any."""
    for name in ("apache-airflow", "apache-airflow-core"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def prepare(
    env: Mapping[str, str], settings: Settings, python: str
) -> tuple[list[str], dict[str, str]]:
    """Run steps 1-6; return the component's command and environment."""
    admin_secret = env.get(contracts.ADMIN_SECRET_VARIABLE, "")
    admin, sign, machine_key = None, None, ""
    if settings.component == API_SERVER:
        if admin_secret:
            admin = config.parse_admin_secret(admin_secret)
        sign = sign_in.parse_sign_in(env.get(contracts.SIGN_IN_VARIABLE))
        secret = contracts.SIGN_IN_CLIENT_SECRET_VARIABLE
        if sign["method"] == "oidc" and not env.get(secret):
            raise ConfigError(f"{secret} is not set (the oidc sign-in's client secret)")
        machine_key = env.get(contracts.MACHINE_KEY_VARIABLE, "")
    airflow_env = config.airflow_environment(env, settings.major)
    airflow_env.update(mwaa_variables(env, settings.airflow_version))
    link_airflow_home(airflow_env, settings.sync_root)
    preload = ld_preload(airflow_env, platform.machine(), os.path.exists)
    if preload:
        airflow_env["LD_PRELOAD"] = preload
    if settings.component in (SCHEDULER, WORKER):
        ensure_pycurl(airflow_env, settings, python)
    airflow_env = run_startup_script(
        os.path.join(settings.sync_root, STARTUP_SCRIPT_KEY), airflow_env, settings.component
    )
    airflow_env = install_requirements(
        os.path.join(settings.sync_root, REQUIREMENTS_KEY), airflow_env, settings, python
    )
    if settings.component == SCHEDULER:
        migrate_database(airflow_env, settings.airflow_version)
    else:
        wait_for_migrations(airflow_env)
    root = runtime_import_root()
    if sign is not None:
        if admin is not None:
            sign = {**sign, "reserved": [admin.username]}
        airflow_env = configure_sign_in(
            sign, airflow_env, settings.major, python, root, __package__
        )
    auth_manager = airflow_env.get("AIRFLOW__CORE__AUTH_MANAGER", "")
    users = fab_users(admin, machine_key)
    if users and needs_admin_user(settings.component, auth_manager, True):
        users_env = {**airflow_env, "PYTHONPATH": with_python_path(airflow_env, root)}
        ensure_users(users, users_env, python, __package__)
    elif settings.component == API_SERVER:
        LOG.info("no user to create (auth manager %s)", auth_manager or "default")
    if settings.component == WORKER:
        airflow_env.update(worker_celery_env(airflow_env, root, __package__))
    command = config.airflow_command(
        settings.component,
        settings.major,
        settings.api_port,
        env.get(contracts.WORKER_QUEUE_VARIABLE, ""),
    )
    return command, airflow_env


def start(
    env: Mapping[str, str],
    *,
    python: str = sys.executable,
    execvpe: Callable[[str, list[str], dict[str, str]], NoReturn] = os.execvpe,
    monitor: Monitor | None = None,
    installed_airflow: str | None = None,
) -> int:
    """Prepare and run the component. Returns the exit code (the worker), or never returns
    (other components, which replace this process)."""
    settings = read_settings(env, installed_airflow)
    declared = env.get(contracts.AIRFLOW_VERSION_VARIABLE)
    if declared and declared != settings.airflow_version:
        LOG.warning(
            "OPENMWAA_AIRFLOW_VERSION is %s but Airflow %s is installed: running %s",
            declared,
            settings.airflow_version,
            settings.airflow_version,
        )
    declared_python = env.get(contracts.PYTHON_VERSION_VARIABLE)
    if declared_python and declared_python != settings.python_version:
        LOG.warning(
            "OPENMWAA_PYTHON_VERSION is %s but this is Python %s",
            declared_python,
            settings.python_version,
        )
    LOG.info(
        "openmwaa runtime: %s of environment %r, Airflow %s, Python %s",
        settings.component,
        env.get(contracts.ENVIRONMENT_NAME_VARIABLE, ""),
        settings.airflow_version,
        platform.python_version(),
    )
    if settings.component == BUILD_REQUIREMENTS:
        return build_requirements(env, settings, python)
    started = time.monotonic()
    relay = start_metrics_relay(env, python)
    command, airflow_env = prepare(env, settings, python)
    LOG.info("start-up steps done in %.0f s", time.monotonic() - started)
    if settings.component == WORKER:
        code = supervise(
            command, airflow_env, monitor, protection=config.task_protection_enabled(env)
        )
        stop_metrics_relay(relay)
        return code
    LOG.info("exec %s", " ".join(command))
    for handler in logging.getLogger().handlers:
        handler.flush()
    execvpe(command[0], command, airflow_env)


def airflow_cli(
    env: Mapping[str, str],
    args: list[str],
    installed_airflow: str | None,
    execvpe: Callable[[str, list[str], dict[str, str]], NoReturn] = os.execvpe,
) -> NoReturn:
    """``python runtime.pyz airflow ARGS``: Airflow's CLI with the settings the container's
    component gets (database, Fernet key, broker) but none of its start-up steps, for an ECS
    Exec shell, whose plain ``airflow`` would not find the database."""
    if not installed_airflow:
        raise ConfigError("Apache Airflow is not installed in this Python")
    airflow_env = config.airflow_environment(env, config.airflow_major(installed_airflow))
    airflow_env.update(mwaa_variables(env, installed_airflow))
    # A sign-in's webserver_config.py imports the runtime (`airflow users ...` loads it).
    airflow_env["PYTHONPATH"] = with_python_path(airflow_env, runtime_import_root())
    execvpe("airflow", ["airflow", *args], airflow_env)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: configure logging, start (or, with ``airflow ARGS``, run the
    Airflow CLI), turn errors into an exit code."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s openmwaa-bootstrap %(levelname)s %(message)s",
        stream=sys.stdout if args[:1] in ([], [METRICS_RELAY]) else sys.stderr,
    )
    os.umask(0o002)
    if args == [METRICS_RELAY]:
        return metrics_relay.main(os.environ)
    try:
        if args[:1] == ["airflow"]:
            airflow_cli(os.environ, args[1:], installed_airflow_version())
        if args:
            raise ConfigError(f"unknown arguments {args}: none, {METRICS_RELAY}, or airflow ARGS")
        return start(
            os.environ,
            monitor=load_monitor(),
            installed_airflow=installed_airflow_version(),
        )
    except ConfigError as error:
        LOG.error("fatal: configuration: %s", error)
        return 78
    except FatalError as error:
        LOG.error("fatal: %s", error)
        return 1
    except Exception:
        LOG.exception("fatal: unexpected error during start-up")
        return 1
