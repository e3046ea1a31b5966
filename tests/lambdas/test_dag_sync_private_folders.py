"""The private .openmwaa/ folders are resolved without following symlinks: a symlink planted
at .openmwaa or inside it cannot redirect the sync's bookkeeping writes outside the mount."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lambdas.dag_sync_fixtures import BUCKET, SyncEnv, make_zip, mocked_aws, s3_event


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        yield SyncEnv(tmp_path)


def everything_outside(env: SyncEnv) -> list[Path]:
    return sorted(env.outside.rglob("*"))


def sync_everything(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"DAG('a')\n")))
    env.run(s3_event(env.put("plugins.zip", make_zip({"p.py": b"x"}))))
    env.reconcile()


def test_a_symlink_planted_at_openmwaa_is_not_followed(env: SyncEnv) -> None:
    (env.mount / ".openmwaa").symlink_to(env.outside)
    sync_everything(env)
    assert everything_outside(env) == []
    assert (env.mount / ".openmwaa").is_dir() and not (env.mount / ".openmwaa").is_symlink()
    assert (env.path("plugins") / "p.py").read_bytes() == b"x"
    uploaded = env.s3.head_object(Bucket=BUCKET, Key="dags/a.py")["ETag"].strip('"')
    assert env.state()["dags/a.py"].etag == uploaded


@pytest.mark.parametrize("name", ["state", "locks", "roll-pending", "plugins", "tmp", "dag-ids"])
def test_a_symlink_planted_inside_openmwaa_is_not_followed(env: SyncEnv, name: str) -> None:
    (env.mount / ".openmwaa").mkdir()
    (env.mount / ".openmwaa" / name).symlink_to(env.outside)
    sync_everything(env)
    assert everything_outside(env) == []
    assert not (env.mount / ".openmwaa" / name).is_symlink()
    assert env.read("dags/a.py") == b"DAG('a')\n"


def test_a_symlink_planted_at_a_lock_file_is_not_followed(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"x = 1\n")))
    lock = env.mount / ".openmwaa" / "locks" / "roll.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(env.outside / "roll.lock")
    env.run(s3_event(env.put("startup.sh", b"#!/bin/sh\n")))
    assert everything_outside(env) == []
