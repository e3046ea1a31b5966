"""Full reconcile: the bucket vs EFS by ETag and size, healing every difference."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dag_sync.keys import TEMP_PREFIX
from dag_sync.model import TransientError
from tests.lambdas.dag_sync_fixtures import (
    BUCKET,
    SyncEnv,
    client_error,
    make_zip,
    mocked_aws,
    s3_event,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        yield SyncEnv(tmp_path)


def upload(env: SyncEnv, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        env.s3.put_object(Bucket=BUCKET, Key=key, Body=body)


BUCKET_CONTENT = {
    "dags/a.py": b"a = 1\n",
    "dags/team/b.py": b"b = 1\n",
    "dags/team/sql/c.sql": b"select 1",
    "requirements.txt": b"requests\n",
    "startup.sh": b"#!/bin/sh\n",
    "plugins.zip": make_zip({"p/__init__.py": b""}),
}


def test_reconcile_first_sync_writes_everything(env: SyncEnv) -> None:
    upload(env, BUCKET_CONTENT)
    summary = env.run({})  # the deploy-time invocation
    assert summary["mode"] == "reconcile"
    assert sorted(summary["written"]) == sorted(BUCKET_CONTENT)
    for key in ("dags/a.py", "dags/team/b.py", "dags/team/sql/c.sql", "requirements.txt"):
        assert env.read(key) == BUCKET_CONTENT[key]
    assert (env.path("plugins") / "p" / "__init__.py").exists()
    assert summary["rolled"] == ["scheduler", "worker"]  # once, not once per file


def test_reconcile_second_run_changes_nothing_and_downloads_nothing(env: SyncEnv) -> None:
    upload(env, BUCKET_CONTENT)
    env.reconcile()
    gets = env.faulty.count("get_object")
    assert gets >= len(BUCKET_CONTENT)
    summary = env.reconcile()
    assert env.faulty.count("get_object") == gets
    assert (summary["written"], summary["removed"]) == ([], [])
    assert summary["unchanged"] == len(BUCKET_CONTENT)
    assert summary["rolled"] == []


def test_reconcile_scheduled_event_runs_the_same_reconcile(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"x"})
    summary = env.run({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert (summary["mode"], summary["written"]) == ("reconcile", ["dags/a.py"])


def test_reconcile_rewrites_object_changed_without_event(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"v1"})
    env.reconcile()
    upload(env, {"dags/a.py": b"v2"})  # same size, different ETag
    summary = env.reconcile()
    assert env.read("dags/a.py") == b"v2"
    assert summary["written"] == ["dags/a.py"]


def test_reconcile_restores_file_deleted_on_efs(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"v1"})
    env.reconcile()
    env.path("dags/a.py").unlink()
    env.reconcile()
    assert env.read("dags/a.py") == b"v1"


def test_reconcile_restores_file_truncated_on_efs(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"v1 content"})
    env.reconcile()
    env.path("dags/a.py").write_bytes(b"v1")
    env.reconcile()
    assert env.read("dags/a.py") == b"v1 content"


def test_reconcile_removes_extra_files_and_their_empty_folders(env: SyncEnv) -> None:
    upload(env, {"dags/keep.py": b"k"})
    (env.mount / "dags" / "old" / "deep").mkdir(parents=True)
    (env.mount / "dags" / "old" / "deep" / "stale.py").write_bytes(b"s")
    summary = env.reconcile()
    assert summary["removed"] == ["dags/old/deep/stale.py"]
    assert not (env.mount / "dags" / "old").exists()
    assert env.read("dags/keep.py") == b"k"


def test_reconcile_removes_file_whose_delete_event_was_lost(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"x")))
    env.s3.delete_object(Bucket=BUCKET, Key="dags/a.py")
    summary = env.reconcile()
    assert summary["removed"] == ["dags/a.py"]
    assert env.state()["dags/a.py"].deleted


def test_reconcile_leaves_files_outside_dags_alone(env: SyncEnv) -> None:
    (env.mount / "notes.txt").write_bytes(b"mine")
    env.reconcile()
    assert (env.mount / "notes.txt").read_bytes() == b"mine"


def test_reconcile_keeps_a_change_applied_by_an_event_while_it_ran(env: SyncEnv) -> None:
    env.clock = 2000.0
    env.run(s3_event(env.put("dags/new.py", b"x")))
    env.s3.delete_object(Bucket=BUCKET, Key="dags/new.py")  # listing won't have it
    env.clock = 1000.0  # the reconcile started before the event was applied
    summary = env.reconcile()
    assert env.read("dags/new.py") == b"x"
    assert "changed by an event" in summary["skipped"][0]["reason"]


def test_reconcile_listing_throttled_raises_and_removes_nothing(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"x"})
    env.reconcile()
    env.faulty.fail("list_objects_v2", client_error("SlowDown", 503, "ListObjectsV2"))
    with pytest.raises(TransientError, match="SlowDown"):
        env.reconcile()
    assert env.read("dags/a.py") == b"x"


def test_reconcile_throttled_object_fails_run_but_syncs_the_others(env: SyncEnv) -> None:
    from dag_sync import handler

    upload(env, {"dags/a.py": b"a", "dags/b.py": b"b"})
    env.faulty.fail("get_object", client_error("SlowDown", 503))
    with pytest.raises(handler.SyncFailedError, match="1 change"):
        env.reconcile()
    assert len([k for k in ("dags/a.py", "dags/b.py") if env.path(k).exists()]) == 1
    assert env.temp_files() == []
    env.reconcile()
    assert env.read("dags/a.py") == b"a" and env.read("dags/b.py") == b"b"


def test_reconcile_refuses_hostile_bucket_keys(env: SyncEnv) -> None:
    upload(env, {"dags/../../outside/pwned.py": b"x", "dags/ok.py": b"ok"})
    summary = env.reconcile()
    assert summary["errors"][0]["key"] == "dags/../../outside/pwned.py"
    assert list(env.outside.iterdir()) == []
    assert env.files() == {"dags/ok.py"}


def test_reconcile_removes_stale_temp_files_only(env: SyncEnv) -> None:
    folder = env.mount / "dags"
    folder.mkdir()
    old = folder / f"{TEMP_PREFIX}dead.tmp"
    young = folder / f"{TEMP_PREFIX}in-flight.tmp"
    old.write_bytes(b"partial")
    young.write_bytes(b"partial")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    env.reconcile()
    assert not old.exists() and young.exists()


def test_reconcile_reports_every_duplicate_dag_id(env: SyncEnv) -> None:
    upload(env, {"dags/one.py": b"DAG('x')\n", "dags/two.py": b"DAG('x')\n"})
    summary = env.reconcile()
    assert summary["duplicate_dag_ids"] == {"x": ["dags/one.py", "dags/two.py"]}
    assert env.metrics()["DuplicateDagIds"] == 1


def test_reconcile_reports_syntax_errors_of_files_it_writes(env: SyncEnv) -> None:
    upload(env, {"dags/bad.py": b"def (:\n", "dags/ok.py": b"x = 1\n"})
    summary = env.reconcile()
    assert [e["file"] for e in summary["syntax_errors"]] == ["dags/bad.py"]
    assert env.metrics()["DagSyntaxErrors"] == 1


def test_reconcile_rebuilds_a_lost_dag_id_index(env: SyncEnv) -> None:
    upload(env, {"dags/one.py": b"DAG('x')\n", "dags/two.py": b"DAG('x')\n"})
    env.reconcile()
    shutil.rmtree(env.mount / ".openmwaa" / "dag-ids")
    summary = env.reconcile()
    assert summary["duplicate_dag_ids"] == {"x": ["dags/one.py", "dags/two.py"]}


def test_reconcile_repairs_a_dag_id_record_that_lost_a_file(env: SyncEnv) -> None:
    upload(env, {"dags/one.py": b"DAG('x')\n", "dags/two.py": b"DAG('x')\n"})
    env.reconcile()
    records = list((env.mount / ".openmwaa" / "dag-ids" / "ids").rglob("*.json"))
    assert len(records) == 1
    records[0].write_text('{"format": 1, "dag_id": "x", "files": ["dags/one.py"]}')
    env.reconcile()
    summary = env.run(s3_event(env.put("dags/three.py", b"DAG('y')\nDAG('x')\n")))
    assert summary["duplicate_dag_ids"] == {"x": ["dags/one.py", "dags/three.py", "dags/two.py"]}


def test_reconcile_forgets_the_dag_ids_of_files_gone_from_efs(env: SyncEnv) -> None:
    upload(env, {"dags/one.py": b"DAG('x')\n", "dags/two.py": b"DAG('x')\n"})
    env.reconcile()
    env.s3.delete_object(Bucket=BUCKET, Key="dags/two.py")
    assert env.reconcile()["duplicate_dag_ids"] == {}
    summary = env.run(s3_event(env.put("dags/one.py", b"DAG('x')\nz = 1\n")))
    assert summary["duplicate_dag_ids"] == {}


def test_reconcile_replaces_the_single_index_of_earlier_versions(env: SyncEnv) -> None:
    upload(env, {"dags/one.py": b"DAG('x')\n"})
    (env.mount / ".openmwaa").mkdir()
    legacy = env.mount / ".openmwaa" / "dag_ids.json"
    legacy.write_text('{"format": 1, "files": {"dags/one.py": ["x"], "dags/two.py": ["x"]}}')
    assert env.reconcile()["duplicate_dag_ids"] == {}
    assert not legacy.exists()


def test_reconcile_counts_files_in_metrics(env: SyncEnv) -> None:
    upload(env, {"dags/a.py": b"a", "dags/b.py": b"b"})
    (env.mount / "dags").mkdir()
    (env.mount / "dags" / "extra.py").write_bytes(b"e")
    env.reconcile()
    assert (env.metrics()["FilesWritten"], env.metrics()["FilesRemoved"]) == (2, 1)


def test_reconcile_parallel_shards_apply_every_file_exactly_once(env: SyncEnv) -> None:
    files = {f"dags/team_{n % 7}/dag_{n}.py": f"DAG('d{n}')\n".encode() for n in range(300)}
    upload(env, files)
    summary = env.reconcile()
    assert summary["written"] == sorted(files)
    assert env.faulty.count("get_object") == len(files)
    assert {k for k, e in env.state().items() if not e.deleted} == set(files)
    assert all(env.read(k) == body for k, body in files.items())


@pytest.mark.parametrize(("code", "status"), [("400", 400), ("AccessDenied", 403)])
def test_reconcile_isolates_a_failed_head_of_a_root_file_and_still_heals_dags(
    env: SyncEnv, code: str, status: int
) -> None:
    from dag_sync import handler

    upload(env, {"dags/a.py": b"a", "requirements.txt": b"requests\n"})
    env.faulty.fail("head_object", client_error(code, status, "HeadObject"))  # plugins.zip
    with pytest.raises(
        handler.SyncFailedError, match=r"plugins\.zip.*pinned version not-a-version"
    ):
        env.reconcile(pinned_versions={"plugins.zip": "not-a-version"})
    assert env.read("dags/a.py") == b"a"
    assert env.read("requirements.txt") == b"requests\n"
    assert env.metrics()["SyncFailures"] == 1
