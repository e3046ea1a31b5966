"""The event path through the real adapter: moto S3, a folder as the EFS mount."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dag_sync import handler
from tests.lambdas.dag_sync_fixtures import (
    BUCKET,
    SyncEnv,
    client_error,
    mocked_aws,
    record,
    s3_event,
    sequencer,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        yield SyncEnv(tmp_path)


# --------------------------------------------------------------------------- writes


def test_event_put_writes_file(env: SyncEnv) -> None:
    summary = env.run(s3_event(env.put("dags/hello.py", b"print('hi')\n")))
    assert env.read("dags/hello.py") == b"print('hi')\n"
    assert summary["written"] == ["dags/hello.py"]


def test_event_put_preserves_folder_hierarchy_and_any_file_type(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/team/sql/query.sql", b"select 1")))
    env.run(s3_event(env.put("dags/team/data.bin", bytes(range(256)))))
    assert env.read("dags/team/sql/query.sql") == b"select 1"
    assert env.read("dags/team/data.bin") == bytes(range(256))


def test_event_put_decodes_url_encoded_key_with_spaces(env: SyncEnv) -> None:
    rec = env.put("dags/my folder/a b+c.py", b"x = 1\n")
    assert rec["s3"]["object"]["key"] == "dags/my+folder/a+b%2Bc.py"
    env.run(s3_event(rec))
    assert env.read("dags/my folder/a b+c.py") == b"x = 1\n"


def test_event_put_writes_non_ascii_key(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/données/日本語.py", b"x = 1\n")))
    assert env.read("dags/données/日本語.py") == b"x = 1\n"


def test_event_put_writes_50_mb_file_intact(env: SyncEnv) -> None:
    body = os.urandom(1024 * 1024) * 50
    env.run(s3_event(env.put("dags/data/big.bin", body)))
    written = env.read("dags/data/big.bin")
    assert hashlib.sha256(written).digest() == hashlib.sha256(body).digest()
    assert env.temp_files() == []


def test_event_put_with_unchanged_etag_skips_download(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"same\n")))
    gets = env.faulty.count("get_object")
    assert gets >= 1
    summary = env.run(s3_event(env.put("dags/a.py", b"same\n")))
    assert env.faulty.count("get_object") == gets
    assert summary["unchanged"] == 1


def test_event_delete_removes_file_and_empty_folders(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/team/etl/a.py", b"x")))
    env.run(s3_event(env.put("dags/keep.py", b"y")))
    summary = env.run(s3_event(env.delete("dags/team/etl/a.py")))
    assert summary["removed"] == ["dags/team/etl/a.py"]
    assert not env.path("dags/team").exists()
    assert env.read("dags/keep.py") == b"y"


def test_event_delete_keeps_file_when_object_exists_again(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"v1")))
    # A delete event whose object was uploaded again since: converge to what S3 holds.
    late_delete = record("dags/a.py", sequencer=env.next_sequencer(), event="ObjectRemoved:Delete")
    env.run(s3_event(late_delete))
    assert env.read("dags/a.py") == b"v1"


# --------------------------------------------------------------------------- order and duplicates


def test_event_out_of_order_keeps_newest_content(env: SyncEnv) -> None:
    first = env.put("dags/a.py", b"v1")
    second = env.put("dags/a.py", b"v2")
    env.run(s3_event(second))
    summary = env.run(s3_event(first))
    assert env.read("dags/a.py") == b"v2"
    assert "stale event" in summary["skipped"][0]["reason"]


def test_event_duplicate_is_noop_without_reading_s3(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.run(s3_event(rec))
    calls = len(env.faulty.calls)
    summary = env.run(s3_event(rec))
    assert len(env.faulty.calls) == calls
    assert "duplicate event" in summary["skipped"][0]["reason"]


def test_event_stale_delete_does_not_remove_newer_file(env: SyncEnv) -> None:
    stale_delete = record("dags/a.py", sequencer=sequencer(0), event="ObjectRemoved:Delete")
    env.s3.put_object(Bucket=BUCKET, Key="dags/a.py", Body=b"old")
    env.run(s3_event(env.put("dags/a.py", b"new")))
    env.s3.delete_object(Bucket=BUCKET, Key="dags/a.py")
    summary = env.run(s3_event(stale_delete))
    assert env.read("dags/a.py") == b"new"
    assert "stale event" in summary["skipped"][0]["reason"]


def test_event_stale_put_after_delete_does_not_resurrect_file(env: SyncEnv) -> None:
    put = env.put("dags/a.py", b"v1")
    env.run(s3_event(put))
    env.run(s3_event(env.delete("dags/a.py")))
    env.s3.put_object(Bucket=BUCKET, Key="dags/a.py", Body=b"v1")  # re-upload, event pending
    summary = env.run(s3_event(put))  # the old event delivered again
    assert not env.path("dags/a.py").exists()
    assert "stale event" in summary["skipped"][0]["reason"]


def test_event_sequencer_is_persisted_under_state_folder(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.run(s3_event(rec))
    entry = env.state()["dags/a.py"]
    assert entry.sequencer == rec["s3"]["object"]["sequencer"]
    assert entry.etag == rec["s3"]["object"]["eTag"]
    assert list((env.mount / ".openmwaa" / "state").glob("*.json"))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from(["put", "delete"]), min_size=1, max_size=5), st.randoms())
def test_event_any_delivery_order_converges_to_bucket_state(
    ops: list[str], rnd: random.Random
) -> None:
    with mocked_aws(), tempfile.TemporaryDirectory() as root:
        env = SyncEnv(Path(root))
        records = []
        for i, op in enumerate(ops):
            if op == "put":
                records.append(env.put("dags/k.py", f"v{i}".encode()))
            else:
                records.append(env.delete("dags/k.py"))
        delivered = records + rnd.sample(records, k=min(2, len(records)))  # duplicates
        rnd.shuffle(delivered)
        for rec in delivered:
            env.run(s3_event(rec))
        expected = f"v{len(ops) - 1}".encode() if ops[-1] == "put" else None
        actual = env.read("dags/k.py") if env.path("dags/k.py").exists() else None
        assert actual == expected
        assert env.temp_files() == []


# --------------------------------------------------------------------------- faults


def test_event_throttled_read_raises_and_leaves_nothing(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.faulty.fail("get_object", client_error("SlowDown", 503))
    with pytest.raises(handler.SyncFailedError, match="SlowDown"):
        env.run(s3_event(rec))
    assert not env.path("dags/a.py").exists()
    assert env.temp_files() == []


def test_event_throttled_read_succeeds_on_retry(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.faulty.fail("get_object", client_error("InternalError", 500))
    with pytest.raises(handler.SyncFailedError, match="InternalError"):
        env.run(s3_event(rec))
    env.run(s3_event(rec))  # Lambda's async retry delivers the same event
    assert env.read("dags/a.py") == b"v1"


def test_event_stream_broken_midway_keeps_previous_file(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"old content")))
    rec = env.put("dags/a.py", b"N" * 300_000)
    env.faulty.break_stream_after = 1000
    with pytest.raises(handler.SyncFailedError, match="read failed after"):
        env.run(s3_event(rec))
    assert env.read("dags/a.py") == b"old content"
    assert env.temp_files() == []


def test_event_truncated_stream_keeps_previous_file(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"old content")))
    rec = env.put("dags/a.py", b"N" * 5000)
    env.faulty.truncate_stream_after = 1000
    with pytest.raises(handler.SyncFailedError, match="ended after 1000 of 5000 bytes"):
        env.run(s3_event(rec))
    assert env.read("dags/a.py") == b"old content"
    assert env.temp_files() == []


def test_event_object_deleted_before_read_is_noop(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.s3.delete_object(Bucket=BUCKET, Key="dags/a.py")
    summary = env.run(s3_event(rec))
    assert not env.path("dags/a.py").exists()
    assert "no longer exists" in summary["skipped"][0]["reason"]
    assert summary["failed"] == []


def test_event_access_denied_is_not_swallowed(env: SyncEnv) -> None:
    rec = env.put("dags/a.py", b"v1")
    env.faulty.fail("get_object", client_error("AccessDenied", 403))
    with pytest.raises(handler.SyncFailedError, match="AccessDenied"):
        env.run(s3_event(rec))


def test_event_malformed_record_is_skipped_and_others_applied(env: SyncEnv) -> None:
    good = env.put("dags/a.py", b"v1")
    bad = record("dags/b.py", sequencer="not-hex")
    summary = env.run(s3_event(bad, good))
    assert env.read("dags/a.py") == b"v1"
    assert summary["errors"][0]["key"] == "Records[0]"
    assert "not a hex string" in summary["errors"][0]["error"]


def test_event_malformed_event_returns_error_without_raising(env: SyncEnv) -> None:
    summary = env.run({"Records": [{"eventSource": "aws:s3"}]})
    assert "malformed event" in summary["errors"][0]["error"]


@pytest.mark.parametrize(
    "key",
    ["dags/../outside/pwned.py", "dags/../../pwned.py", "dags/a/../../../outside/x.py"],
)
def test_event_escaping_key_writes_nothing_outside_mount(env: SyncEnv, key: str) -> None:
    env.s3.put_object(Bucket=BUCKET, Key=key, Body=b"pwned")
    summary = env.run(s3_event(record(key, sequencer=env.next_sequencer())))
    assert "'..'" in summary["errors"][0]["error"]
    assert list(env.outside.iterdir()) == []
    assert env.files() == set()
    assert env.faulty.calls == []


def test_event_symlink_planted_on_efs_cannot_redirect_write(env: SyncEnv) -> None:
    (env.mount / "dags").mkdir()
    (env.mount / "dags" / "evil").symlink_to(env.outside)
    summary = env.run(s3_event(env.put("dags/evil/x.py", b"pwned")))
    assert "outside the mount" in summary["errors"][0]["error"]
    assert list(env.outside.iterdir()) == []


# --------------------------------------------------------------------------- feedback and metrics


def test_event_syntax_error_is_reported_and_file_still_synced(env: SyncEnv) -> None:
    summary = env.run(s3_event(env.put("dags/bad.py", b"x = 1\ndef f(:\n")))
    assert env.read("dags/bad.py") == b"x = 1\ndef f(:\n"
    assert summary["syntax_errors"][0]["file"] == "dags/bad.py"
    assert summary["syntax_errors"][0]["line"] == 2
    assert env.metrics()["DagSyntaxErrors"] == 1


def test_event_duplicate_dag_id_is_reported_with_both_files(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/one.py", b"DAG('shared')\n")))
    summary = env.run(s3_event(env.put("dags/two.py", b"DAG(dag_id='shared')\n")))
    assert summary["duplicate_dag_ids"] == {"shared": ["dags/one.py", "dags/two.py"]}
    assert env.metrics()["DuplicateDagIds"] == 1
    assert env.read("dags/two.py") == b"DAG(dag_id='shared')\n"


def test_event_removing_duplicate_clears_the_report(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/one.py", b"DAG('shared')\n")))
    env.run(s3_event(env.put("dags/two.py", b"DAG('shared')\n")))
    env.run(s3_event(env.delete("dags/two.py")))
    summary = env.run(s3_event(env.put("dags/one.py", b"DAG('shared')\nx = 2\n")))
    assert summary["duplicate_dag_ids"] == {}


def test_event_metrics_line_is_embedded_metric_format(env: SyncEnv) -> None:
    env.run(s3_event(env.put("dags/a.py", b"x = 1\n")))
    line = env.metrics()
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "OpenMWAA"
    assert directive["Dimensions"] == [["Environment"]]
    assert {m["Name"] for m in directive["Metrics"]} == {
        "DagSyntaxErrors",
        "DuplicateDagIds",
        "FilesWritten",
        "FilesRemoved",
        "SyncFailures",
    }
    assert (line["Environment"], line["FilesWritten"], line["FilesRemoved"]) == ("test-env", 1, 0)


# --------------------------------------------------------------------------- entry point


def test_handler_reads_its_settings_from_the_environment(
    env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    monkeypatch.setenv("EFS_MOUNT_PATH", str(env.mount))
    monkeypatch.setenv("SERVICE_NAMES", "")
    monkeypatch.setattr(handler, "_CLIENTS", {"s3": env.faulty})
    summary = handler.handler(s3_event(env.put("dags/a.py", b"x")), None)
    assert summary["written"] == ["dags/a.py"]


def test_config_from_env_reads_every_setting() -> None:
    config = handler.Config.from_env(
        {
            "BUCKET_NAME": "b",
            "EFS_MOUNT_PATH": "/mnt/airflow",
            "REQUIREMENTS_S3_OBJECT_VERSION": "v1",
            "PLUGINS_S3_OBJECT_VERSION": "",
            "STARTUP_SCRIPT_S3_OBJECT_VERSION": "v3",
            "CLUSTER_NAME": "c",
            "SERVICE_NAMES": "scheduler, worker,,",
            "METRIC_NAMESPACE": "NS",
            "ENVIRONMENT_NAME": "prod",
            "MAX_PLUGIN_ENTRIES": "5",
            "MAX_PLUGIN_BYTES": "1024",
        }
    )
    assert config.pinned_versions == {"requirements.txt": "v1", "startup.sh": "v3"}
    assert config.services == ("scheduler", "worker")
    assert (config.namespace, config.environment) == ("NS", "prod")
    assert (config.max_plugin_entries, config.max_plugin_bytes) == (5, 1024)


def test_fails_when_environment_is_incomplete() -> None:
    with pytest.raises(ValueError, match=r"BUCKET_NAME is not set.*EFS_MOUNT_PATH must be"):
        handler.Config.from_env({"MAX_PLUGIN_BYTES": "lots"})


def test_fails_when_plugin_limit_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="MAX_PLUGIN_BYTES must be a positive integer, got 'lots'"):
        handler.Config.from_env(
            {"BUCKET_NAME": "b", "EFS_MOUNT_PATH": "/mnt/a", "MAX_PLUGIN_BYTES": "lots"}
        )
