"""The DAG sync starts the requirements build (ecs:RunTask) before it rolls the services and
at reconcile while the current key has no complete build, and reports a failed build. Every
environment has a key: the effective requirements are requirements.txt's and the AWS CLI, so
an environment without requirements.txt gets one build too (the AWS CLI alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from dag_sync import handler
from dag_sync.aws_ports import EcsBuildRunner
from dag_sync.requirements_build import (
    BUILD_MARKER,
    BUILD_STALE_SECONDS,
    BUILDS_DIR,
    RETRY_FAILED_SECONDS,
    Action,
    BuildFiles,
    BuildStatus,
    RequirementsBuilds,
    decide,
    effective_requirements,
    requirements_key,
)
from tests.lambdas.dag_sync_fixtures import RecordingEcs, SyncEnv, mocked_aws, s3_event

KEY_INPUTS = {"OPENMWAA_AIRFLOW_VERSION": "3.3.2", "OPENMWAA_PYTHON_VERSION": "3.12"}
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/airflow/abc"
NOW = 1_800_000_000.0


class BuildEcs(RecordingEcs):
    """Records run_task and update_service in one ordered list."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.run_calls: list[dict[str, Any]] = []
        self.run_error: BaseException | None = None

    def update_service(self, **kwargs: Any) -> Any:
        self.order.append("update_service")
        return super().update_service(**kwargs)

    def run_task(self, **kwargs: Any) -> Any:
        self.order.append("run_task")
        self.run_calls.append(kwargs)
        if self.run_error is not None:
            raise self.run_error
        return {"tasks": [{"taskArn": TASK_ARN}], "failures": []}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        sync = SyncEnv(tmp_path)
        sync.ecs = BuildEcs()
        yield sync


def build_config() -> dict[str, Any]:
    return {
        "build_task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/build:3",
        "build_subnets": ("subnet-a", "subnet-b"),
        "build_security_groups": ("sg-1",),
        "key_inputs": KEY_INPUTS,
    }


def builds(env: SyncEnv) -> Path:
    return env.mount / BUILDS_DIR


def build_metric(env: SyncEnv) -> int:
    [line] = [json.loads(x) for x in env.emitted if "RequirementsBuildFailed" in x]
    value: int = line["RequirementsBuildFailed"]
    return value


def key_of(requirements: bytes | None) -> str:
    """The build key of a requirements.txt (None: no file)."""
    return requirements_key(effective_requirements(requirements), KEY_INPUTS)


def complete(env: SyncEnv, data: bytes | None) -> None:
    folder = builds(env) / key_of(data)
    folder.mkdir(parents=True)
    (folder / BUILD_MARKER).write_text("{}")


# --- the decision ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "failed"),
    [
        (BuildStatus(), Action.START, False),
        (BuildStatus(complete=True, failed_at=NOW - 10), Action.NOTHING, False),
        (BuildStatus(requested_at=NOW - 60), Action.WAIT, False),
        (BuildStatus(requested_at=NOW - BUILD_STALE_SECONDS - 1), Action.START, True),
        (BuildStatus(failed_at=NOW - 60), Action.WAIT, True),
        (BuildStatus(failed_at=NOW - RETRY_FAILED_SECONDS - 1), Action.START, True),
        (BuildStatus(requested_at=NOW - 120, failed_at=NOW - 60), Action.WAIT, True),
        (BuildStatus(requested_at=NOW - 60, failed_at=NOW - 120), Action.WAIT, False),
    ],
)
def test_decide(status: BuildStatus, action: Action, failed: bool) -> None:
    decision = decide(status, NOW)

    assert (decision.action, decision.failed) == (action, failed)


# --- the check ------------------------------------------------------------------------------


class Runner:
    def __init__(self) -> None:
        self.runs = 0

    def run_build(self) -> str:
        self.runs += 1
        return TASK_ARN


def checker(mount: Path, runner: Runner, now: float = NOW) -> RequirementsBuilds:
    return RequirementsBuilds(BuildFiles(str(mount)), runner, KEY_INPUTS, lambda: now)


def test_check_starts_a_build_once_and_marks_it_requested(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"emoji\n")
    runner = Runner()

    first = checker(tmp_path, runner).ensure()
    second = checker(tmp_path, runner, NOW + 60).ensure()

    assert runner.runs == 1
    assert first.started == TASK_ARN and first.failed == 0
    assert second.decision is not None and second.decision.action is Action.WAIT
    key = key_of(b"emoji\n")
    assert first.key == key
    marker = json.loads((tmp_path / BUILDS_DIR / f"{key}.requested").read_text())
    assert marker == {"at": NOW, "task": TASK_ARN}


@pytest.mark.parametrize("text", [None, b"", b"# none\n"])
def test_check_without_requirements_builds_the_aws_cli(tmp_path: Path, text: bytes | None) -> None:
    if text is not None:
        (tmp_path / "requirements.txt").write_bytes(text)
    runner = Runner()

    check = checker(tmp_path, runner).ensure()

    assert runner.runs == 1 and check.failed == 0
    assert check.key == key_of(None) == requirements_key(b"awscli\n", KEY_INPUTS)
    assert (tmp_path / BUILDS_DIR / f"{check.key}.requested").is_file()


def test_check_with_the_aws_cli_build_complete_starts_nothing(tmp_path: Path) -> None:
    folder = tmp_path / BUILDS_DIR / key_of(None)
    folder.mkdir(parents=True)
    (folder / BUILD_MARKER).write_text("{}")
    runner = Runner()

    check = checker(tmp_path, runner).ensure()

    assert runner.runs == 0
    assert check.decision is not None and check.decision.action is Action.NOTHING


def test_check_keys_the_users_awscli_pin_without_a_second_one(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"emoji\nAWSCLI==1.40.0")

    check = checker(tmp_path, Runner()).ensure()

    assert check.key == requirements_key(b"emoji\nAWSCLI==1.40.0\n", KEY_INPUTS)


def test_check_ignores_a_symlinked_requirements_file(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_bytes(b"emoji\n")
    (tmp_path / "requirements.txt").symlink_to(tmp_path / "elsewhere.txt")
    runner = Runner()

    # the link is not followed: the file counts as missing (the AWS CLI alone)
    assert checker(tmp_path, runner).ensure().key == key_of(None)


def test_check_that_cannot_start_the_task_logs_and_retries_next_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "requirements.txt").write_bytes(b"emoji\n")

    class Broken:
        def run_build(self) -> str:
            raise RuntimeError("ecs:RunTask started no task: RESOURCE:ENI")

    check = RequirementsBuilds(BuildFiles(str(tmp_path)), Broken(), KEY_INPUTS, lambda: NOW)
    result = check.ensure()

    assert result.error is not None and "RESOURCE:ENI" in result.error
    assert not list(tmp_path.rglob("*.requested"))
    assert "cannot start the build task" in caplog.text
    runner = Runner()
    checker(tmp_path, runner).ensure()
    assert runner.runs == 1


# --- through the handler --------------------------------------------------------------------


def test_requirements_change_starts_the_build_before_the_services_roll(env: SyncEnv) -> None:
    env.run(s3_event(env.put("requirements.txt", b"emoji==2.16.0\n")), **build_config())

    assert env.ecs.order == ["run_task", "update_service", "update_service"]
    [call] = env.ecs.run_calls
    assert call["taskDefinition"].endswith("task-definition/build:3")
    assert call["cluster"] == "airflow" and call["launchType"] == "FARGATE"
    network = call["networkConfiguration"]["awsvpcConfiguration"]
    assert network == {
        "subnets": ["subnet-a", "subnet-b"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED",
    }
    assert build_metric(env) == 0
    # the report's metrics line stays the last one
    assert "FilesWritten" in json.loads(env.emitted[-1])


def test_reconcile_starts_the_build_when_the_current_key_has_none(env: SyncEnv) -> None:
    env.put("requirements.txt", b"emoji\n")

    env.reconcile(**build_config())

    assert env.ecs.order.count("run_task") == 1


def test_reconcile_without_requirements_starts_the_aws_cli_build(env: SyncEnv) -> None:
    env.reconcile(**build_config())

    assert env.ecs.order.count("run_task") == 1
    assert (builds(env) / f"{key_of(None)}.requested").is_file()
    assert build_metric(env) == 0


def test_dag_change_without_requirements_starts_the_aws_cli_build_once(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"x = 1\n")), **build_config())
    assert env.ecs.order.count("run_task") == 1
    complete(env, None)
    env.ecs.order.clear()

    env.run(s3_event(env.put("dags/b.py", b"y = 2\n")), **build_config())

    assert "run_task" not in env.ecs.order


def test_reconcile_with_a_complete_build_starts_nothing(env: SyncEnv) -> None:
    env.put("requirements.txt", b"emoji\n")
    env.reconcile(**build_config())
    complete(env, b"emoji\n")
    env.ecs.order.clear()
    env.emitted.clear()

    env.reconcile(**build_config())

    assert "run_task" not in env.ecs.order
    assert build_metric(env) == 0


def test_failed_build_is_reported_and_not_restarted_at_once(env: SyncEnv) -> None:
    env.put("requirements.txt", b"emoji\n")
    env.clock = NOW
    env.reconcile(**build_config())
    key = key_of(b"emoji\n")
    (builds(env) / f"{key}.failed").write_text(json.dumps({"at": NOW + 300, "error": "pip"}))
    env.ecs.order.clear()
    env.emitted.clear()
    env.clock = NOW + 600

    env.reconcile(**build_config())

    assert "run_task" not in env.ecs.order
    assert build_metric(env) == 1


def test_without_a_build_task_the_sync_still_rolls(env: SyncEnv) -> None:
    env.run(s3_event(env.put("requirements.txt", b"emoji\n")))

    assert env.ecs.order == ["update_service", "update_service"]
    assert build_metric(env) == 0


def test_config_reads_the_build_settings() -> None:
    config = handler.Config.from_env(
        {
            "BUCKET_NAME": "b",
            "EFS_MOUNT_PATH": "/mnt/airflow",
            "BUILD_TASK_DEFINITION": "arn:task-definition/build:1",
            "BUILD_SUBNETS": "subnet-a, subnet-b",
            "BUILD_SECURITY_GROUPS": "sg-1",
            "OPENMWAA_AIRFLOW_VERSION": "3.3.2",
            "OPENMWAA_PYTHON_VERSION": "3.12",
        }
    )

    assert config.build_task_definition == "arn:task-definition/build:1"
    assert config.build_subnets == ("subnet-a", "subnet-b")
    assert config.build_security_groups == ("sg-1",)
    assert dict(config.key_inputs) == KEY_INPUTS


# --- the boto3 adapter ----------------------------------------------------------------------


def test_runner_calls_run_task_in_the_private_subnets() -> None:
    client = boto3.client("ecs", region_name="us-east-1")
    stubber = Stubber(client)
    expected = {
        "cluster": "airflow",
        "taskDefinition": "build:3",
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "count": 1,
        "startedBy": "openmwaa-dag-sync",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-a"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
    }
    stubber.add_response("run_task", {"tasks": [{"taskArn": TASK_ARN}]}, expected)
    with stubber:
        arn = EcsBuildRunner(
            lambda: client, "airflow", "build:3", ["subnet-a"], ["sg-1"]
        ).run_build()

    assert arn == TASK_ARN


def test_runner_raises_when_ecs_starts_no_task() -> None:
    client = boto3.client("ecs", region_name="us-east-1")
    stubber = Stubber(client)
    failures = [{"arn": "build:3", "reason": "RESOURCE:ENI"}]
    stubber.add_response("run_task", {"tasks": [], "failures": failures})
    with stubber, pytest.raises(RuntimeError, match="RESOURCE:ENI"):
        EcsBuildRunner(lambda: client, "airflow", "build:3", ["s"], ["g"]).run_build()
