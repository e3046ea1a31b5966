"""The bootstrap's steps and their order, with fake `airflow` and `python` executables.

The fakes are shell scripts that record their arguments (and stdin) in a file, so these tests
run the real subprocess handling, timeouts, startup.sh sourcing and signal forwarding without
Airflow.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from openmwaa.runtime import (
    bootstrap,
    config,
    contracts,
    machine_users,
    sign_in,
    startup_steps,
    supervisor,
    task_protection,
    upgrade_gate,
)
from openmwaa.runtime import requirements as runtime_requirements
from openmwaa.runtime.config import ConfigError
from openmwaa.runtime.startup_steps import FatalError, Settings

from .test_bootstrap_config import contract_env
from .test_runtime_sign_in import IDENTITY_CENTER, OIDC
from .test_upgrade_gate import (
    CHECK_OUTPUT,
    KNOWN,
    NEW_HEAD,
    NEWER_HEAD,
    OLD_HEAD,
    OLD_SCHEDULER,
    OLD_TRIGGERER,
    UNDEFINED_TABLE,
    FakeClock,
    FakeDatabase,
    FakePgError,
)

FAKE_AIRFLOW = """#!/bin/bash
echo "airflow $*" >> "$FAKE_CALLS"
case "$1 $2" in
  "users create") read -r p1; read -r p2; echo "stdin $p1 $p2" >> "$FAKE_CALLS"
                  if [[ -f "$FAKE_CALLS.user" ]]; then echo "admin already exists in the db";
                  else touch "$FAKE_CALLS.user"; echo created; fi ;;
  "users reset-password") read -r p1; read -r p2; echo "stdin $p1 $p2" >> "$FAKE_CALLS" ;;
  "db migrate") exit "${FAKE_MIGRATE_EXIT:-0}" ;;
  "db check-migrations") n=$(grep -c check-migrations "$FAKE_CALLS")
                         codes=(${FAKE_CHECK_EXITS:-0}); code=${codes[$((n - 1))]:-${codes[-1]}}
                         printf '%s' "${FAKE_CHECK_OUTPUT:-}"; exit "$code" ;;
  "celery worker") trap 'echo "worker got TERM" >> "$FAKE_CALLS"; exit 0' TERM
                   echo "worker STARTUP_SH_MARK=${STARTUP_SH_MARK:-}" >> "$FAKE_CALLS"
                   echo "worker CELERY_CONFIG=$AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS" \
                     >> "$FAKE_CALLS"
                   echo "worker PYTHONPATH=$PYTHONPATH" >> "$FAKE_CALLS"
                   touch "$FAKE_CALLS.worker"; sleep 30 & wait ;;
esac
"""

FAKE_PYTHON = """#!/bin/bash
echo "python $*" >> "$FAKE_CALLS"
if [[ "$1" == -c ]]; then
  cat > "$FAKE_CALLS.stdin"; echo "python PYTHONPATH=$PYTHONPATH" >> "$FAKE_CALLS"
  echo "users created or changed: []"; exit "${FAKE_DASH_C_EXIT:-0}"
fi
exit "${FAKE_PIP_EXIT:-0}"
"""


class ExecCalledError(Exception):
    """Raised by the fake execvpe instead of replacing the test process."""

    def __init__(self, file: str, args: list[str], env: dict[str, str]) -> None:
        super().__init__(file)
        self.args_ = args
        self.env = env


def fake_execvpe(file: str, args: list[str], env: dict[str, str]) -> NoReturn:
    raise ExecCalledError(file, args, env)


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A sync root, fake executables on PATH, and the contract's environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "airflow", FAKE_AIRFLOW)
    python = _script(bin_dir / "python", FAKE_PYTHON)
    sync = tmp_path / "sync"
    (sync / "dags").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    calls.touch()
    env = contract_env(
        OPENMWAA_SYNC_ROOT=str(sync),
        OPENMWAA_AIRFLOW_VERSION="3.3.2",
        OPENMWAA_CONSTRAINTS_URL="none",
        PATH=f"{bin_dir}:/usr/bin:/bin",
        FAKE_CALLS=str(calls),
    )
    monkeypatch.setattr(machine_users, "USERS_ATTEMPTS", 2)
    monkeypatch.setattr(machine_users.time, "sleep", lambda _s: None)
    # the metadata database the scheduler's upgrade gate reads: none alive, at the old head
    database = FakeDatabase([([(OLD_HEAD,)], [])])
    database.probe = lambda: f"{len(calls_of(calls))} airflow calls"
    connected: list[dict[str, str]] = []

    def connector(airflow_env: dict[str, str]) -> Any:
        connected.append(airflow_env)
        return database.connect

    monkeypatch.setattr(upgrade_gate, "connector", connector)
    # the gate's clock: its polls pass at once, and a wait that never ends times out at once
    monkeypatch.setattr(upgrade_gate, "time", FakeClock())
    monkeypatch.setattr(upgrade_gate, "airflow_revisions", lambda: KNOWN)
    yield {
        "env": env,
        "sync": sync,
        "calls": calls,
        "python": python,
        "tmp": tmp_path,
        "db": database,
        "connected": connected,
    }


def calls_of(path: Path) -> list[str]:
    """The fakes' calls, in order."""
    return path.read_text().splitlines()


def calls(sandbox: dict[str, Any]) -> list[str]:
    return calls_of(sandbox["calls"])


def start(sandbox: dict[str, Any], component: str, **env: str) -> ExecCalledError:
    with pytest.raises(ExecCalledError) as exec_info:
        bootstrap.start(
            {**sandbox["env"], "OPENMWAA_COMPONENT": component, **env},
            python=sandbox["python"],
            execvpe=fake_execvpe,
            installed_airflow="3.3.2",
        )
    return exec_info.value


CHECK_AT_ONCE = "airflow db check-migrations --migration-wait-timeout 1"
MIGRATION_NEEDED = {"FAKE_CHECK_EXITS": "1", "FAKE_CHECK_OUTPUT": CHECK_OUTPUT}
"""`airflow db check-migrations` fails every time: the database is behind."""
MIGRATED_BY_ANOTHER = {"FAKE_CHECK_EXITS": "1 0", "FAKE_CHECK_OUTPUT": CHECK_OUTPUT}
"""It fails at first, and passes once this scheduler holds the migration lock."""


def test_scheduler_at_the_migration_head_migrates_nothing(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="openmwaa.bootstrap"):
        result = start(sandbox, "scheduler")

    assert calls(sandbox) == [CHECK_AT_ONCE]
    assert sandbox["connected"] == []
    assert (
        "metadata database already at this Airflow's migration head; nothing to migrate"
        in caplog.text
    )
    assert result.args_ == ["airflow", "scheduler"]
    assert result.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "OPENMWAA_DB_SECRET" not in result.env
    # only the worker's Celery loads the runtime's config module; the executor keeps Airflow's
    assert "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS" not in result.env


def test_scheduler_migrates_once_older_components_stopped(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox["db"].rounds = [
        ([(OLD_HEAD,)], [OLD_SCHEDULER, OLD_TRIGGERER]),
        ([(OLD_HEAD,)], [OLD_TRIGGERER]),
        ([(OLD_HEAD,)], []),
    ]

    with caplog.at_level(logging.INFO, logger="openmwaa.bootstrap"):
        result = start(sandbox, "scheduler", **MIGRATION_NEEDED)

    assert calls(sandbox) == [CHECK_AT_ONCE, CHECK_AT_ONCE, "airflow db migrate"]
    # the lock is held from before the second check until the migration ended
    assert sandbox["db"].events == [
        "locked after 1 airflow calls",
        "released after 3 airflow calls",
    ]
    waits = [r.getMessage() for r in caplog.records if "waiting for older" in r.getMessage()]
    assert len(waits) == 2
    assert "SchedulerJob on ip-10-0-1-5.ec2.internal" in waits[0]
    assert "TriggererJob on ip-10-0-2-7.ec2.internal" in waits[1]
    assert "SchedulerJob" not in waits[1]
    assert "no older Airflow component is alive: taking the schedulers' migration lock" in (
        caplog.text
    )
    assert "metadata database migrated" in caplog.text
    conn = sandbox["connected"][0]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert conn.startswith("postgresql+psycopg2://")
    assert result.args_ == ["airflow", "scheduler"]


def test_scheduler_migrates_a_new_database_at_once(sandbox: dict[str, Any]) -> None:
    sandbox["db"].rounds = [(UNDEFINED_TABLE, UNDEFINED_TABLE)]
    output = "TimeoutError: ... MigrationHead(s) in DB: set() | Migration Head(s) in Source"
    output += f" Code: {{'{NEW_HEAD}'}}"

    start(sandbox, "scheduler", FAKE_CHECK_EXITS="1", FAKE_CHECK_OUTPUT=output)

    assert calls(sandbox) == [CHECK_AT_ONCE, CHECK_AT_ONCE, "airflow db migrate"]
    assert len(sandbox["db"].connections) == 2  # one look, one lock


def test_scheduler_that_waited_beside_the_migrating_one_migrates_nothing(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # both saw the old components stop; the other one took the lock first and migrated
    sandbox["db"].rounds = [([(OLD_HEAD,)], [OLD_SCHEDULER]), ([(OLD_HEAD,)], [])]

    with caplog.at_level(logging.INFO, logger="openmwaa.bootstrap"):
        start(sandbox, "scheduler", **MIGRATED_BY_ANOTHER)

    assert calls(sandbox) == [CHECK_AT_ONCE, CHECK_AT_ONCE]
    assert "nothing to migrate" in caplog.text
    assert "metadata database migrated" not in caplog.text
    assert sandbox["db"].events == [
        "locked after 1 airflow calls",
        "released after 2 airflow calls",
    ]


def test_scheduler_stops_waiting_once_another_migrated(sandbox: dict[str, Any]) -> None:
    # the other scheduler migrated and runs: its job is alive, but it is not an older one
    sandbox["db"].rounds = [
        ([(OLD_HEAD,)], [OLD_SCHEDULER]),
        ([(NEW_HEAD,)], [("SchedulerJob", "ip-10-0-3-9.ec2.internal")]),
    ]

    start(sandbox, "scheduler", **MIGRATED_BY_ANOTHER)

    assert calls(sandbox) == [CHECK_AT_ONCE, CHECK_AT_ONCE]
    assert len(sandbox["db"].connections) == 3  # two looks, one lock


def test_fails_when_a_newer_airflow_migrated_the_database(sandbox: dict[str, Any]) -> None:
    sandbox["db"].rounds = [([(NEWER_HEAD,)], [OLD_SCHEDULER])]

    with pytest.raises(FatalError, match="migrated by a newer Airflow") as error:
        start_scheduler(sandbox, **MIGRATION_NEEDED)

    assert "`airflow db downgrade --to-version 3.3.2`" in str(error.value)
    assert calls(sandbox) == [CHECK_AT_ONCE]
    assert sandbox["db"].events == []


def test_fails_when_older_components_outlive_the_wait(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gated: list[upgrade_gate.Gate] = []

    def give_up(gate: upgrade_gate.Gate, *_args: object) -> tuple[upgrade_gate.Verdict, str]:
        gated.append(gate)
        return upgrade_gate.Verdict.FAIL, "not migrated: waited 900 s (alive: SchedulerJob)"

    monkeypatch.setattr(upgrade_gate, "wait", give_up)

    with pytest.raises(FatalError, match="not migrated: waited 900 s"):
        start_scheduler(sandbox, **MIGRATION_NEEDED)

    assert calls(sandbox) == [CHECK_AT_ONCE]
    assert sandbox["db"].events == []
    assert gated == [upgrade_gate.Gate("3.3.2", frozenset({NEW_HEAD}), KNOWN)]


def test_fails_when_the_migration_lock_cannot_be_taken(sandbox: dict[str, Any]) -> None:
    sandbox["db"].lock_error = FakePgError("canceling statement due to lock timeout", "55P03")

    with pytest.raises(FakePgError, match="lock timeout"):
        start_scheduler(sandbox, **MIGRATION_NEEDED)

    assert calls(sandbox) == [CHECK_AT_ONCE]
    assert sandbox["db"].connections[-1].closed


@pytest.mark.parametrize("component", ["dag-processor", "triggerer"])
def test_other_components_wait_for_migrations(sandbox: dict[str, Any], component: str) -> None:
    result = start(sandbox, component)

    assert calls(sandbox) == [
        f"airflow db check-migrations --migration-wait-timeout {startup_steps.MIGRATION_TIMEOUT}"
    ]
    assert result.args_ == ["airflow", component]


def users_stdin(sandbox: dict[str, Any]) -> list[list[str]]:
    """What the users process read on stdin."""
    users: list[list[str]] = json.loads(Path(f"{sandbox['calls']}.stdin").read_text())
    return users


def users_calls(sandbox: dict[str, Any]) -> list[str]:
    return [line for line in calls(sandbox) if "apply_users" in line]


def test_api_server_creates_the_admin_user_with_the_password_on_stdin(
    sandbox: dict[str, Any],
) -> None:
    result = start(sandbox, "api-server")

    [command] = users_calls(sandbox)
    assert command.endswith(
        "-c from openmwaa.runtime.machine_users import apply_users; apply_users()"
    )
    assert "pw" not in command
    assert users_stdin(sandbox) == [["admin", "pw", "Admin"]]
    assert result.args_ == [
        "airflow",
        "api-server",
        "--apps",
        "core",
        "--port",
        "8080",
        "--proxy-headers",
    ]
    assert result.env["FORWARDED_ALLOW_IPS"] == "*"
    assert "OPENMWAA_ADMIN_SECRET" not in result.env


def test_api_server_makes_the_machine_users_in_the_same_process(sandbox: dict[str, Any]) -> None:
    result = start(sandbox, "api-server", OPENMWAA_MACHINE_KEY="k" * 32)

    assert len(users_calls(sandbox)) == 1
    users = users_stdin(sandbox)
    assert [u[0] for u in users] == [
        "admin",
        *map(contracts.machine_username, contracts.AIRFLOW_ROLES),
    ]
    assert users[2] == ["openmwaa-iam-op", machine_users.machine_password("k" * 32, "Op"), "Op"]
    assert "OPENMWAA_MACHINE_KEY" not in result.env
    assert not any("k" * 32 in line or users[2][1] in line for line in calls(sandbox))
    root = bootstrap.runtime_import_root()
    assert f"python PYTHONPATH={root}" in calls(sandbox)


def test_users_failure_is_retried_then_not_fatal(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    result = start(sandbox, "api-server", FAKE_DASH_C_EXIT="3", OPENMWAA_MACHINE_KEY="k" * 32)

    assert len(users_calls(sandbox)) == machine_users.USERS_ATTEMPTS
    assert "cannot make the users" in caplog.text
    assert machine_users.machine_password("k" * 32, "Op") not in caplog.text
    assert result.args_[:2] == ["airflow", "api-server"]


def test_api_server_without_fab_creates_no_user(sandbox: dict[str, Any]) -> None:
    start(
        sandbox,
        "api-server",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple."
        "simple_auth_manager.SimpleAuthManager",
    )

    assert not users_calls(sandbox)


def test_api_server_of_airflow_2_is_the_webserver(sandbox: dict[str, Any]) -> None:
    with pytest.raises(ExecCalledError) as result:
        bootstrap.start(
            {**sandbox["env"], "OPENMWAA_COMPONENT": "api-server"},
            python=sandbox["python"],
            execvpe=fake_execvpe,
            installed_airflow="2.11.2",
        )

    assert result.value.args_ == ["airflow", "webserver", "--port", "8080"]


def test_startup_script_exports_reach_airflow_except_protected_ones(
    sandbox: dict[str, Any],
) -> None:
    (sandbox["sync"] / "startup.sh").write_text(
        'echo "component $MWAA_AIRFLOW_COMPONENT" >> "$FAKE_CALLS"\n'
        "export STARTUP_SH_MARK=yes\n"
        "export AIRFLOW__CORE__EXECUTOR=LocalExecutor\n"
        "export AIRFLOW__CORE__PARALLELISM=7\n"
        "unset AIRFLOW__CORE__LOAD_EXAMPLES\n"
    )

    result = start(sandbox, "scheduler", AIRFLOW__CORE__LOAD_EXAMPLES="False")

    assert calls(sandbox)[0] == "component scheduler"
    assert result.env["STARTUP_SH_MARK"] == "yes"
    assert result.env["AIRFLOW__CORE__PARALLELISM"] == "7"
    assert result.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "AIRFLOW__CORE__LOAD_EXAMPLES" not in result.env


def test_airflow_processes_get_what_mwaa_gives_dags(sandbox: dict[str, Any]) -> None:
    home = sandbox["tmp"] / "opt-airflow"
    (home / "dags").mkdir(parents=True)
    (sandbox["sync"] / "startup.sh").write_text(
        'echo "startup $MWAA_AIRFLOW_COMPONENT $AIRFLOW_ENV_NAME" >> "$FAKE_CALLS"\n'
        "export MWAA_MY_FLAG=on\n"
        "export AIRFLOW_ENV_NAME=renamed\n"
    )

    result = start(
        sandbox, "api-server", OPENMWAA_ENVIRONMENT_NAME="prod-etl", AIRFLOW_HOME=str(home)
    )

    assert calls(sandbox)[0] == "startup webserver prod-etl"
    assert result.env["MWAA_AIRFLOW_COMPONENT"] == "webserver"
    assert result.env["AIRFLOW_ENV_NAME"] == "prod-etl"
    assert result.env["MWAA_MY_FLAG"] == "on"
    assert result.env["AIRFLOW_CONN_AWS_DEFAULT"] == "aws://"
    assert result.env["AIRFLOW_VERSION"] == "3.3.2"
    assert os.readlink(home / "dags") == str(sandbox["sync"] / "dags")


def test_startup_script_may_end_with_exit_0(sandbox: dict[str, Any]) -> None:
    (sandbox["sync"] / "startup.sh").write_text("export STARTUP_SH_MARK=yes\nset -- x y\nexit 0\n")

    result = start(sandbox, "scheduler")

    assert result.env["STARTUP_SH_MARK"] == "yes"
    # PATH as it was, then the AWS CLI of the requirements build (not built yet), last
    builds = sandbox["sync"] / ".openmwaa" / "requirements"
    no_file = runtime_requirements.effective_requirements(None)
    key = runtime_requirements.requirements_key(no_file, sandbox["env"])
    assert result.env["PATH"].split(os.pathsep) == [
        *sandbox["env"]["PATH"].split(os.pathsep),
        str(builds / key / "awscli" / "bin"),
    ]


def test_failing_startup_script_is_ignored(sandbox: dict[str, Any]) -> None:
    (sandbox["sync"] / "startup.sh").write_text("export STARTUP_SH_MARK=yes\nfalse\n")

    result = start(sandbox, "scheduler")

    assert "STARTUP_SH_MARK" not in result.env


def test_startup_script_is_killed_at_its_time_limit(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(startup_steps, "STARTUP_SCRIPT_TIMEOUT", 1)
    (sandbox["sync"] / "startup.sh").write_text("export STARTUP_SH_MARK=yes\nsleep 30\n")

    with caplog.at_level(logging.ERROR):
        result = start(sandbox, "scheduler")

    assert "STARTUP_SH_MARK" not in result.env
    assert "startup script killed after 1 s" in caplog.text


def test_requirements_are_installed_with_constraints(sandbox: dict[str, Any]) -> None:
    requirements = sandbox["sync"] / "requirements.txt"
    requirements.write_text("boto3\n")
    constraints = sandbox["tmp"] / "c.txt"
    constraints.write_text("boto3==1.0\n")

    start(sandbox, "scheduler", OPENMWAA_CONSTRAINTS_URL=str(constraints))

    pip = calls(sandbox)[0].split()
    assert pip[:4] == ["python", "-m", "pip", "install"]
    assert pip[pip.index("-r") + 1] == str(requirements)
    assert "-c" in pip


def test_requirements_with_their_own_constraints_get_no_others(sandbox: dict[str, Any]) -> None:
    (sandbox["sync"] / "requirements.txt").write_text("-c https://example.com/c.txt\nboto3\n")

    start(sandbox, "scheduler", OPENMWAA_CONSTRAINTS_URL="file:///nonexistent")

    assert "-c" not in calls(sandbox)[0].split()


def test_empty_requirements_install_nothing(sandbox: dict[str, Any]) -> None:
    (sandbox["sync"] / "requirements.txt").write_text("# nothing yet\n")

    start(sandbox, "scheduler")

    assert calls(sandbox) == [CHECK_AT_ONCE]


def test_failed_requirements_are_not_fatal(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    (sandbox["sync"] / "requirements.txt").write_text("nonexistent-package\n")

    with caplog.at_level(logging.ERROR):
        result = start(sandbox, "scheduler", FAKE_PIP_EXIT="1")

    assert result.args_ == ["airflow", "scheduler"]
    assert "requirements install failed (exit 1)" in caplog.text


def start_scheduler(sandbox: dict[str, Any], **env: str) -> None:
    bootstrap.start(
        {**sandbox["env"], **env},
        python=sandbox["python"],
        execvpe=fake_execvpe,
        installed_airflow="3.3.2",
    )


def test_failed_migration_is_fatal(sandbox: dict[str, Any]) -> None:
    with pytest.raises(FatalError, match="airflow db migrate failed"):
        start_scheduler(sandbox, FAKE_MIGRATE_EXIT="1", **MIGRATION_NEEDED)

    assert calls(sandbox) == [CHECK_AT_ONCE, CHECK_AT_ONCE, "airflow db migrate"]
    assert sandbox["db"].events[-1] == "released after 3 airflow calls"


def test_fails_when_the_migrations_do_not_arrive(sandbox: dict[str, Any]) -> None:
    with pytest.raises(FatalError, match="belongs to another Airflow version"):
        start(sandbox, "triggerer", FAKE_CHECK_EXITS="1")


def test_main_exits_non_zero_on_a_configuration_error(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**sandbox["env"]}
    del env["OPENMWAA_DB_SECRET"]
    monkeypatch.setattr(os, "environ", env)
    monkeypatch.setattr(bootstrap.os, "umask", lambda _mask: 0)

    assert bootstrap.main([]) == 78


def test_airflow_cli_runs_airflow_with_the_derived_settings_and_no_start_up_step(
    sandbox: dict[str, Any],
) -> None:
    execs: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_exec(path: str, argv: list[str], env: dict[str, str]) -> NoReturn:
        execs.append((path, argv, env))
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        bootstrap.airflow_cli(
            sandbox["env"], ["connections", "export", "/tmp/c.json"], "3.3.2", fake_exec
        )

    [(path, argv, env)] = execs
    assert (path, argv) == ("airflow", ["airflow", "connections", "export", "/tmp/c.json"])
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__FERNET_KEY"]
    assert "OPENMWAA_DB_SECRET" not in env
    assert calls(sandbox) == []


def test_main_refuses_unknown_arguments_and_needs_airflow_for_the_cli(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", {**sandbox["env"]})
    monkeypatch.setattr(bootstrap.os, "umask", lambda _mask: 0)
    monkeypatch.setattr(bootstrap, "installed_airflow_version", lambda: None)

    assert bootstrap.main(["migrate"]) == 78
    assert bootstrap.main(["airflow", "version"]) == 78


def test_fails_when_component_is_missing() -> None:
    with pytest.raises(ConfigError, match="OPENMWAA_COMPONENT"):
        startup_steps.read_settings({"OPENMWAA_SYNC_ROOT": "/x"}, "3.3.2")


def test_worker_forwards_sigterm_to_celery_only_and_returns_its_code(
    sandbox: dict[str, Any],
) -> None:
    (sandbox["sync"] / "startup.sh").write_text(
        "export STARTUP_SH_MARK=worker-mark\nexport PYTHONPATH=/startup/lib\n"
    )
    sandbox["env"]["PYTHONPATH"] = "/user/lib"
    started = Path(str(sandbox["calls"]) + ".worker")
    seen: dict[str, Any] = {}

    def monitor(stop: threading.Event, *, agent_uri: str | None) -> None:
        seen["agent_uri"] = agent_uri
        stop.wait(60)
        seen["stopped"] = stop.is_set()

    def terminate() -> None:
        for _ in range(200):
            if started.exists():
                break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=terminate, daemon=True).start()
    code = bootstrap.start(
        {**sandbox["env"], "OPENMWAA_COMPONENT": "worker", "ECS_AGENT_URI": "http://agent"},
        python=sandbox["python"],
        execvpe=fake_execvpe,
        monitor=monitor,
        installed_airflow="3.3.2",
    )

    assert code == 0
    assert "worker STARTUP_SH_MARK=worker-mark" in calls(sandbox)
    # Celery loads the runtime's config module (scale-in protection on task receipt)
    assert "worker CELERY_CONFIG=openmwaa.runtime.celery_signals.CELERY_CONFIG" in calls(sandbox)
    assert f"worker PYTHONPATH=/user/lib:{bootstrap.runtime_import_root()}" in calls(sandbox)
    assert "worker got TERM" in calls(sandbox)
    assert seen["agent_uri"] == "http://agent"
    assert signal.getsignal(signal.SIGTERM) == previous


def test_worker_without_task_protection_runs_no_monitor(
    sandbox: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # mw1.micro: no autoscaler and no ecs:UpdateTaskProtection permission
    airflow = Path(sandbox["env"]["PATH"].split(":")[0]) / "airflow"
    airflow.write_text("#!/bin/bash\nexit 0\n")
    seen: list[str | None] = []

    def monitor(stop: threading.Event, *, agent_uri: str | None) -> None:
        seen.append(agent_uri)

    with caplog.at_level(logging.INFO, logger="openmwaa.bootstrap"):
        code = bootstrap.start(
            {
                **sandbox["env"],
                "OPENMWAA_COMPONENT": "worker",
                "ECS_AGENT_URI": "http://agent",
                "OPENMWAA_TASK_PROTECTION": "off",
            },
            python=sandbox["python"],
            execvpe=fake_execvpe,
            monitor=monitor,
            installed_airflow="3.3.2",
        )

    assert code == 0
    assert seen == []
    assert "task scale-in protection is off (OPENMWAA_TASK_PROTECTION=off)" in caplog.text


def test_worker_exit_code_is_celerys(sandbox: dict[str, Any]) -> None:
    airflow = Path(sandbox["env"]["PATH"].split(":")[0]) / "airflow"
    airflow.write_text('#!/bin/bash\n[[ "$1" == celery ]] && exit 3\nexit 0\n')

    code = bootstrap.start(
        {**sandbox["env"], "OPENMWAA_COMPONENT": "worker"},
        python=sandbox["python"],
        execvpe=fake_execvpe,
        installed_airflow="3.3.2",
    )

    assert code == 3


def test_load_monitor_is_task_protections_monitor() -> None:
    assert supervisor.load_monitor() is task_protection.run_monitor


@pytest.mark.parametrize(
    ("version", "expected"),
    [("5.4.2", True), ("5.5.0", False), ("5.5.4", False), ("5.6.0rc1", False), (None, False)],
)
def test_kombu_needs_pycurl(version: str | None, expected: bool) -> None:
    assert startup_steps.kombu_needs_pycurl(version) is expected


def test_pycurl_is_installed_for_an_old_kombu(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup_steps.importlib.metadata, "version", lambda _name: "5.4.2")
    monkeypatch.setattr(startup_steps.importlib.util, "find_spec", lambda _name: None)
    settings = startup_steps.read_settings(
        {**sandbox["env"], "OPENMWAA_COMPONENT": "worker"}, "3.3.2"
    )

    startup_steps.ensure_pycurl(sandbox["env"], settings, sandbox["python"])

    assert calls(sandbox)[0].split()[-1] == "pycurl"


def test_fails_when_pycurl_cannot_be_installed(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(startup_steps.importlib.metadata, "version", lambda _name: "5.4.2")
    monkeypatch.setattr(startup_steps.importlib.util, "find_spec", lambda _name: None)
    settings = startup_steps.read_settings(
        {**sandbox["env"], "OPENMWAA_COMPONENT": "worker"}, "3.3.2"
    )

    with pytest.raises(FatalError, match="pycurl"):
        startup_steps.ensure_pycurl(
            {**sandbox["env"], "FAKE_PIP_EXIT": "1"}, settings, sandbox["python"]
        )


SETTINGS = Settings("worker", "3.3.2", 3, "3.12", "/sync", "8080")


def test_constraint_sources_default_order() -> None:
    sources = startup_steps.constraint_sources({}, SETTINGS, "/home/airflow/constraints.txt")

    assert sources == [
        "/home/airflow/constraints.txt",
        config.default_constraints_url("3.3.2", "3.12"),
        startup_steps.LOCAL_CONSTRAINTS,
    ]


def test_constraint_sources_explicit_url_then_local() -> None:
    sources = startup_steps.constraint_sources(
        {"OPENMWAA_CONSTRAINTS_URL": "https://mirror/c.txt"}, SETTINGS, "/image/c.txt"
    )

    assert sources == ["https://mirror/c.txt", startup_steps.LOCAL_CONSTRAINTS]


@pytest.mark.parametrize("value", ["none", "NONE", ""])
def test_constraint_sources_disabled(value: str) -> None:
    assert (
        startup_steps.constraint_sources({"OPENMWAA_CONSTRAINTS_URL": value}, SETTINGS, None) == []
    )


def test_unreadable_constraints_fall_back_to_the_installed_packages(tmp_path: Path) -> None:
    env = {"OPENMWAA_CONSTRAINTS_URL": str(tmp_path / "missing.txt")}

    path = startup_steps.prepare_constraints(env, SETTINGS, str(tmp_path))

    assert path is not None
    assert "pytest==" in Path(path).read_text()


def test_parse_env_dump() -> None:
    assert startup_steps.parse_env_dump(b"A=1\0B=x=y\0C=line1\nline2\0") == {
        "A": "1",
        "B": "x=y",
        "C": "line1\nline2",
    }


def test_ld_preload() -> None:
    assert startup_steps.ld_preload({}, "x86_64", lambda _p: True) == (
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    )
    assert startup_steps.ld_preload({"LD_PRELOAD": "/x.so"}, "x86_64", lambda _p: True) is None
    assert startup_steps.ld_preload({}, "aarch64", lambda _p: False) is None


def test_exit_code_of_a_signalled_child() -> None:
    assert supervisor.exit_code(-15) == 143
    assert supervisor.exit_code(2) == 2


def test_settings_report_the_installed_airflow(sandbox: dict[str, Any]) -> None:
    settings = startup_steps.read_settings(
        {**sandbox["env"], "OPENMWAA_AIRFLOW_VERSION": "3.3.1"}, "3.3.2"
    )

    assert (settings.airflow_version, settings.major) == ("3.3.2", 3)


def test_admin_secret_parsed_before_it_is_dropped(sandbox: dict[str, Any]) -> None:
    secret = json.dumps({"username": "ops", "password": "s3cret"})

    start(sandbox, "api-server", OPENMWAA_ADMIN_SECRET=secret)

    assert users_stdin(sandbox) == [["ops", "s3cret", "Admin"]]


def test_api_server_with_oidc_writes_webserver_config_and_loads_the_runtime(
    sandbox: dict[str, Any],
) -> None:
    home = sandbox["tmp"] / "home"
    home.mkdir()

    result = start(
        sandbox,
        "api-server",
        AIRFLOW_HOME=str(home),
        OPENMWAA_SIGN_IN=json.dumps(OIDC),
        OPENMWAA_SIGN_IN_CLIENT_SECRET="client-s3cret",
    )

    written = (home / "webserver_config.py").read_text()
    assert "AUTH_TYPE = AUTH_OAUTH" in written
    assert "client-s3cret" not in written
    assert result.env["AIRFLOW__FAB__CONFIG_FILE"] == str(home / "webserver_config.py")
    assert result.env["AIRFLOW__FAB__ENABLE_PROXY_FIX"] == "True"
    assert result.env["PYTHONPATH"].split(os.pathsep)[-1] == bootstrap.runtime_import_root()
    assert "from openmwaa.runtime.sign_in import security_manager_class" in written
    assert "'reserved': ['admin']" in written


def test_api_server_of_airflow_2_with_oidc_sets_the_webserver_options(
    sandbox: dict[str, Any],
) -> None:
    home = sandbox["tmp"] / "home"
    home.mkdir()
    env = {
        **sandbox["env"],
        "OPENMWAA_COMPONENT": "api-server",
        "AIRFLOW_HOME": str(home),
        "OPENMWAA_SIGN_IN": json.dumps(OIDC),
        "OPENMWAA_SIGN_IN_CLIENT_SECRET": "client-s3cret",
    }
    with pytest.raises(ExecCalledError) as result:
        bootstrap.start(
            env, python=sandbox["python"], execvpe=fake_execvpe, installed_airflow="2.11.2"
        )

    assert result.value.env["AIRFLOW__WEBSERVER__CONFIG_FILE"] == str(home / "webserver_config.py")
    assert result.value.env["AIRFLOW__WEBSERVER__ENABLE_PROXY_FIX"] == "True"
    assert "AIRFLOW__FAB__CONFIG_FILE" not in result.value.env


def test_api_server_without_sign_in_writes_no_webserver_config(sandbox: dict[str, Any]) -> None:
    home = sandbox["tmp"] / "home"
    home.mkdir()

    result = start(sandbox, "api-server", AIRFLOW_HOME=str(home))

    assert not (home / "webserver_config.py").exists()
    assert "AIRFLOW__FAB__CONFIG_FILE" not in result.env
    assert "AIRFLOW__FAB__ENABLE_PROXY_FIX" not in result.env
    assert "PYTHONPATH" not in result.env


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OPENMWAA_SIGN_IN": "{not json"}, "OPENMWAA_SIGN_IN is not valid JSON"),
        ({"OPENMWAA_SIGN_IN": json.dumps({"method": "ldap"})}, "OPENMWAA_SIGN_IN: method"),
        ({"OPENMWAA_SIGN_IN": json.dumps(OIDC)}, "OPENMWAA_SIGN_IN_CLIENT_SECRET is not set"),
    ],
)
def test_fails_at_start_when_the_sign_in_is_unusable(
    sandbox: dict[str, Any], variables: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        start(sandbox, "api-server", **variables)

    assert calls(sandbox) == []


def test_identity_center_fails_at_start_without_python3_saml(sandbox: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"apache-airflow-providers-amazon\[python3-saml\]"):
        start(
            sandbox,
            "api-server",
            FAKE_DASH_C_EXIT="1",
            OPENMWAA_SIGN_IN=json.dumps(IDENTITY_CENTER),
        )

    assert "python -c import onelogin.saml2.auth" in calls(sandbox)


def test_identity_center_runs_the_aws_auth_manager_and_makes_no_user(
    sandbox: dict[str, Any],
) -> None:
    result = start(
        sandbox,
        "api-server",
        OPENMWAA_SIGN_IN=json.dumps(IDENTITY_CENTER),
        OPENMWAA_MACHINE_KEY="k" * 32,
    )

    assert result.env["AIRFLOW__CORE__AUTH_MANAGER"] == sign_in.AWS_AUTH_MANAGER
    assert result.env["AIRFLOW__AWS_AUTH_MANAGER__AVP_POLICY_STORE_ID"] == "ps-1"
    assert "airflow aws-auth-manager update-avp-schema --policy-store-id ps-1" in calls(sandbox)
    assert not users_calls(sandbox)


def test_other_components_ignore_the_sign_in(sandbox: dict[str, Any]) -> None:
    result = start(sandbox, "triggerer", OPENMWAA_SIGN_IN="{not json")

    assert result.args_ == ["airflow", "triggerer"]


# -- the metrics relay ----------------------------------------------------------------------

METRICS = {"namespace": "AmazonMWAA", "environment": "prod", "metrics": ["OpenSlots"]}


def relay_stub(on_sigusr1: str) -> subprocess.Popen[bytes]:
    """A relay's stand-in doing ``on_sigusr1`` at SIGUSR1, once it has said it is ready."""
    code = (
        f"import signal, sys, time\nsignal.signal(signal.SIGUSR1, {on_sigusr1})\n"
        "print('ready', flush=True)\ntime.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def metrics_variable(relay: bool) -> str:
    return json.dumps({**METRICS, "port": 8125, "relay": relay})


def _wait_for_call(sandbox: dict[str, Any], line: str) -> None:
    for _ in range(200):
        if line in calls(sandbox):
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{line!r} not in {calls(sandbox)}")


def test_the_relay_container_starts_the_relay_before_airflow(sandbox: dict[str, Any]) -> None:
    result = start(sandbox, "scheduler", OPENMWAA_METRICS=metrics_variable(True))

    _wait_for_call(sandbox, f"python -m {bootstrap.__package__} metrics-relay")
    assert result.env["AIRFLOW__METRICS__STATSD_ON"] == "True"


def test_other_containers_send_to_the_relay_without_starting_one(
    sandbox: dict[str, Any],
) -> None:
    result = start(sandbox, "dag-processor", OPENMWAA_METRICS=metrics_variable(False))

    assert result.env["AIRFLOW__METRICS__STATSD_PORT"] == "8125"
    threading.Event().wait(0.3)
    assert not any("metrics-relay" in call for call in calls(sandbox))


def test_the_relay_gets_the_environment_without_the_raw_secrets() -> None:
    started: list[tuple[list[str], dict[str, str]]] = []

    class FakeProcess:
        pid = 42

    def popen(command: list[str], *, env: dict[str, str], **_kwargs: Any) -> Any:
        started.append((command, env))
        return FakeProcess()

    env = contract_env(OPENMWAA_METRICS=metrics_variable(True), AWS_REGION="eu-west-1")
    assert bootstrap.start_metrics_relay(env, "/usr/bin/python3", popen) is not None

    [(command, relay_env)] = started
    assert command == ["/usr/bin/python3", "-m", bootstrap.__package__, "metrics-relay"]
    assert relay_env["AWS_REGION"] == "eu-west-1"
    assert relay_env["OPENMWAA_METRICS"] == env["OPENMWAA_METRICS"]
    assert bootstrap.runtime_import_root() in relay_env["PYTHONPATH"].split(":")
    assert not set(config.RAW_SECRET_VARIABLES) & set(relay_env)


def test_the_relay_of_the_zip_application_is_the_zip(tmp_path: Path) -> None:
    zipapp = tmp_path / "runtime.pyz"
    zipapp.touch()

    command = bootstrap.metrics_relay_command("python", str(zipapp), "openmwaa_runtime")

    assert command == ["python", str(zipapp), "metrics-relay"]


def test_a_relay_that_cannot_start_does_not_stop_airflow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def popen(*_args: Any, **_kwargs: Any) -> Any:
        raise FileNotFoundError("no python")

    env = contract_env(OPENMWAA_METRICS=metrics_variable(True))
    broken = contract_env(OPENMWAA_METRICS="{")

    assert bootstrap.start_metrics_relay(env, "python", popen) is None
    assert bootstrap.start_metrics_relay(broken, "python", popen) is None
    assert caplog.text.count("metrics relay not started") == 2


def test_the_worker_has_the_relay_publish_and_exit_once_celery_exited(
    sandbox: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    relays: list[subprocess.Popen[bytes]] = []

    def start_relay(env: Any, python: str) -> subprocess.Popen[bytes]:
        relays.append(relay_stub("lambda *a: exit(7)"))
        return relays[-1]

    monkeypatch.setattr(bootstrap, "start_metrics_relay", start_relay)
    airflow = Path(sandbox["env"]["PATH"].split(":")[0]) / "airflow"
    airflow.write_text("#!/bin/bash\nsleep 0.5\nexit 0\n")

    code = bootstrap.start(
        {**sandbox["env"], "OPENMWAA_COMPONENT": "worker"},
        python=sandbox["python"],
        execvpe=fake_execvpe,
        installed_airflow="3.3.2",
    )

    assert code == 0
    assert relays[0].returncode == 7


def test_a_relay_that_does_not_exit_is_killed() -> None:
    proc = relay_stub("signal.SIG_IGN")

    bootstrap.stop_metrics_relay(proc, timeout=0.5)

    assert proc.returncode == -signal.SIGKILL
    bootstrap.stop_metrics_relay(proc)
    bootstrap.stop_metrics_relay(None)


def test_main_runs_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {})
    monkeypatch.setattr(bootstrap.os, "umask", lambda _mask: 0)

    assert bootstrap.main(["metrics-relay"]) == 78
