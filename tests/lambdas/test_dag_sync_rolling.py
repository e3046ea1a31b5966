"""requirements.txt / plugins.zip / startup.sh: service rolls and S3 object version pins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dag_sync import handler
from tests.lambdas.dag_sync_fixtures import (
    BUCKET,
    RecordingEcs,
    SyncEnv,
    client_error,
    mocked_aws,
    moto_client,
    record,
    s3_event,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        yield SyncEnv(tmp_path)


def roll_pending(env: SyncEnv) -> list[str]:
    return os.listdir(env.mount / ".openmwaa" / "roll-pending")


# --------------------------------------------------------------------------- rolling


def test_requirements_change_rolls_every_service(env: SyncEnv) -> None:
    summary = env.run(s3_event(env.put("requirements.txt", b"requests==2.32.3\n")))
    assert env.read("requirements.txt") == b"requests==2.32.3\n"
    assert env.ecs.calls == [
        {"cluster": "airflow", "service": "scheduler", "forceNewDeployment": True},
        {"cluster": "airflow", "service": "worker", "forceNewDeployment": True},
    ]
    assert summary["rolled"] == ["scheduler", "worker"]
    assert roll_pending(env) == []


def test_dag_change_does_not_roll(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"x = 1\n")))
    assert env.ecs.calls == []


def test_duplicate_requirements_event_does_not_roll_again(env: SyncEnv) -> None:
    rec = env.put("requirements.txt", b"a==1\n")
    env.run(s3_event(rec))
    env.run(s3_event(rec))
    assert len(env.ecs.calls) == 2


def test_startup_script_is_written_executable_and_rolls(env: SyncEnv) -> None:
    env.run(s3_event(env.put("startup.sh", b"#!/bin/bash\nexport A=1\n")))
    assert os.access(env.path("startup.sh"), os.X_OK)
    assert len(env.ecs.calls) == 2


def test_requirements_delete_removes_file_and_rolls(env: SyncEnv) -> None:
    env.run(s3_event(env.put("requirements.txt", b"a==1\n")))
    summary = env.run(s3_event(env.delete("requirements.txt")))
    assert not env.path("requirements.txt").exists()
    assert summary["removed"] == ["requirements.txt"]
    assert len(env.ecs.calls) == 4


def test_roll_reaches_real_ecs_services(env: SyncEnv) -> None:
    ecs = moto_client("ecs")
    ecs.create_cluster(clusterName="airflow")
    ecs.register_task_definition(
        family="airflow", containerDefinitions=[{"name": "a", "image": "x", "memory": 512}]
    )
    for name in ("scheduler", "worker"):
        ecs.create_service(
            cluster="airflow", serviceName=name, taskDefinition="airflow", desiredCount=0
        )
    env.ecs = RecordingEcs(real=ecs)
    summary = env.run(s3_event(env.put("requirements.txt", b"a==1\n")))
    assert summary["rolled"] == ["scheduler", "worker"]


def test_roll_without_service_names_rolls_every_service_of_the_cluster(env: SyncEnv) -> None:
    ecs = moto_client("ecs")
    ecs.create_cluster(clusterName="airflow")
    ecs.register_task_definition(
        family="airflow", containerDefinitions=[{"name": "a", "image": "x", "memory": 512}]
    )
    for name in ("api-server", "scheduler", "worker"):
        ecs.create_service(
            cluster="airflow", serviceName=name, taskDefinition="airflow", desiredCount=0
        )
    env.ecs = RecordingEcs(real=ecs)
    summary = env.run(s3_event(env.put("requirements.txt", b"a==1\n")), services=())
    assert [arn.rsplit("/", 1)[1] for arn in summary["rolled"]] == [
        "api-server",
        "scheduler",
        "worker",
    ]
    assert roll_pending(env) == []


def test_roll_without_service_names_before_the_cluster_exists_is_not_an_error(
    env: SyncEnv,
) -> None:
    env.ecs = RecordingEcs(real=moto_client("ecs"))
    env.s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"a==1\n")
    summary = env.run({}, services=())
    assert summary["rolled"] == [] and summary["failed"] == []
    assert roll_pending(env) == []


def test_roll_before_services_exist_is_not_an_error(env: SyncEnv) -> None:
    env.ecs = RecordingEcs(real=moto_client("ecs"))  # no cluster yet: deploy-time sync
    env.s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"a==1\n")
    summary = env.run({})
    assert summary["written"] == ["requirements.txt"]
    assert summary["rolled"] == [] and summary["failed"] == []
    assert roll_pending(env) == []


def test_throttled_roll_is_retried_by_the_next_invocation(env: SyncEnv) -> None:
    rec = env.put("requirements.txt", b"a==1\n")
    env.ecs.faults.append(client_error("ThrottlingException", 400, "UpdateService"))
    with pytest.raises(handler.SyncFailedError, match="ThrottlingException"):
        env.run(s3_event(rec))
    assert env.read("requirements.txt") == b"a==1\n"
    assert len(roll_pending(env)) == 1
    summary = env.run(s3_event(rec))  # the retry: a duplicate, but the roll is still owed
    assert summary["rolled"] == ["scheduler", "worker"]
    assert roll_pending(env) == []


def test_failed_download_of_requirements_does_not_roll(env: SyncEnv) -> None:
    rec = env.put("requirements.txt", b"a==1\n")
    env.faulty.fail("get_object", client_error("SlowDown", 503))
    with pytest.raises(handler.SyncFailedError, match="SlowDown"):
        env.run(s3_event(rec))
    assert env.ecs.calls == [] and roll_pending(env) == []


# --------------------------------------------------------------------------- pinning


def test_pinned_requirements_ignores_event_for_another_version(env: SyncEnv) -> None:
    pinned = env.put("requirements.txt", b"a==1\n")["s3"]["object"]["versionId"]
    newer = env.put("requirements.txt", b"a==2\n")
    summary = env.run(s3_event(newer), pinned_versions={"requirements.txt": pinned})
    assert not env.path("requirements.txt").exists()
    assert f"pinned to version {pinned}" in summary["skipped"][0]["reason"]
    assert env.ecs.calls == []


def test_pinned_requirements_event_for_pinned_version_applies_that_version(
    env: SyncEnv,
) -> None:
    first = env.put("requirements.txt", b"a==1\n")
    env.put("requirements.txt", b"a==2\n")  # latest is newer than the pin
    pin = {"requirements.txt": first["s3"]["object"]["versionId"]}
    env.run(s3_event(first), pinned_versions=pin)
    assert env.read("requirements.txt") == b"a==1\n"


def test_reconcile_fetches_the_pinned_version_not_the_latest(env: SyncEnv) -> None:
    first = env.put("startup.sh", b"echo one\n")
    env.put("startup.sh", b"echo two\n")
    pin = {"startup.sh": first["s3"]["object"]["versionId"]}
    env.reconcile(pinned_versions=pin)
    assert env.read("startup.sh") == b"echo one\n"


def test_reconcile_follows_a_changed_pin(env: SyncEnv) -> None:
    first = env.put("requirements.txt", b"a==1\n")
    second = env.put("requirements.txt", b"a==2\n")
    env.reconcile(pinned_versions={"requirements.txt": first["s3"]["object"]["versionId"]})
    summary = env.reconcile(
        pinned_versions={"requirements.txt": second["s3"]["object"]["versionId"]}
    )
    assert env.read("requirements.txt") == b"a==2\n"
    assert summary["rolled"] == ["scheduler", "worker"]


def test_pinned_requirements_survives_delete_marker(env: SyncEnv) -> None:
    first = env.put("requirements.txt", b"a==1\n")
    pin = {"requirements.txt": first["s3"]["object"]["versionId"]}
    env.run(s3_event(first), pinned_versions=pin)
    marker = env.delete("requirements.txt")  # its version id is the delete marker's
    summary = env.run(s3_event(marker), pinned_versions=pin)
    assert env.read("requirements.txt") == b"a==1\n"
    assert "pinned to version" in summary["skipped"][0]["reason"]


def test_unpinned_event_without_version_applies_latest(env: SyncEnv) -> None:
    env.s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"a==3\n")
    env.run(s3_event(record("requirements.txt", sequencer=env.next_sequencer())))
    assert env.read("requirements.txt") == b"a==3\n"
