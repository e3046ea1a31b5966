"""The pure core (events, keys, verdicts, model): event parsing, key checks, sequencer ordering,
pinning, reconcile diff."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dag_sync.events import parse_event
from dag_sync.keys import KeyKind, classify, key_problem
from dag_sync.model import (
    Action,
    ChangeBatch,
    Entry,
    ObjectInfo,
    Problem,
    ReconcileRequest,
    Report,
    S3Change,
)
from dag_sync.verdicts import (
    Fix,
    Order,
    compare_sequencers,
    order_verdict,
    pin_problem,
    reconcile_fix,
)
from tests.lambdas.dag_sync_fixtures import BUCKET, record, s3_event, sequencer


def entry(seq: str | None = "00A0", **overrides: Any) -> Entry:
    values: dict[str, Any] = {
        "sequencer": seq,
        "etag": "e1",
        "size": 10,
        "version_id": "v1",
        "deleted": False,
        "applied_at": 100.0,
        "source": "event",
    }
    values.update(overrides)
    return Entry(**values)


def only_change(event: dict[str, Any]) -> S3Change:
    batch = parse_event(event, BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert not batch.malformed and not batch.ignored
    (change,) = batch.changes
    return change


def only_malformed(event: object) -> Problem:
    batch = parse_event(event, BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert not batch.changes
    (problem,) = batch.malformed
    return problem


# --------------------------------------------------------------------------- events


def test_parse_event_decodes_plus_as_space() -> None:
    change = only_change(s3_event(record("dags/my dag.py", sequencer=sequencer(1))))
    assert change.key == "dags/my dag.py"


def test_parse_event_decodes_percent_encoded_non_ascii_key() -> None:
    raw = record("dags/données/café_日本.py", sequencer=sequencer(1))
    assert raw["s3"]["object"]["key"] == ("dags/donn%C3%A9es/caf%C3%A9_%E6%97%A5%E6%9C%AC.py")
    assert only_change(s3_event(raw)).key == "dags/données/café_日本.py"


def test_parse_event_decodes_literal_plus_sign() -> None:
    change = only_change(s3_event(record("dags/a+b.py", sequencer=sequencer(1))))
    assert change.key == "dags/a+b.py"


def test_parse_event_maps_created_and_removed_to_actions() -> None:
    created = only_change(s3_event(record("dags/a.py", sequencer=sequencer(1))))
    removed = only_change(
        s3_event(record("dags/a.py", sequencer=sequencer(2), event="ObjectRemoved:Delete"))
    )
    assert (created.action, removed.action) == (Action.PUT, Action.DELETE)


def test_parse_event_strips_quotes_from_etag() -> None:
    change = only_change(s3_event(record("dags/a.py", sequencer=sequencer(1), etag='"abc"')))
    assert change.etag == "abc"


def test_parse_event_empty_object_means_reconcile() -> None:
    assert parse_event({}, BUCKET) == ReconcileRequest("direct")


def test_parse_event_action_reconcile_means_reconcile() -> None:
    assert parse_event({"action": "reconcile"}, BUCKET) == ReconcileRequest("direct")


def test_parse_event_scheduled_event_means_reconcile() -> None:
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert parse_event(event, BUCKET) == ReconcileRequest("schedule")


def test_parse_event_keeps_good_records_next_to_malformed_ones() -> None:
    bad = record("dags/b.py", sequencer=sequencer(2))
    del bad["s3"]["object"]["key"]
    batch = parse_event(s3_event(record("dags/a.py", sequencer=sequencer(1)), bad), BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert [c.key for c in batch.changes] == ["dags/a.py"]
    assert batch.malformed[0].where == "Records[1]"
    assert "'s3.object.key' is missing" in batch.malformed[0].reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: r.update(eventSource="aws:sqs"), "eventSource is 'aws:sqs'"),
        (lambda r: r.pop("eventName"), "eventName is missing"),
        (lambda r: r.pop("s3"), "'s3' is missing"),
        (lambda r: r["s3"].pop("object"), "'s3.bucket' or 's3.object' is missing"),
        (lambda r: r["s3"]["bucket"].update(name="other"), "bucket is 'other'"),
        (lambda r: r["s3"]["object"].pop("sequencer"), "'sequencer' None is missing"),
        (lambda r: r["s3"]["object"].update(sequencer="xyz"), "not a hex string"),
        (lambda r: r["s3"]["object"].update(key="dags/%FF.py"), "not valid URL-encoded UTF-8"),
    ],
)
def test_fails_when_record_is_malformed(mutate: Any, reason: str) -> None:
    bad = record("dags/a.py", sequencer=sequencer(1))
    mutate(bad)
    assert reason in only_malformed(s3_event(bad)).reason


def test_fails_when_records_is_not_a_list() -> None:
    assert "'Records' is not a list" in only_malformed({"Records": "nope"}).reason


def test_fails_when_event_is_not_an_object() -> None:
    assert "not an object" in only_malformed(["x"]).reason


def test_fails_when_event_has_unknown_action() -> None:
    assert "unknown action 'sync'" in only_malformed({"action": "sync"}).reason


def test_fails_when_event_is_unrecognised() -> None:
    assert "unrecognised event with keys [foo]" in only_malformed({"foo": 1}).reason


def test_parse_event_refuses_escaping_key_as_malformed() -> None:
    problem = only_malformed(s3_event(record("dags/../../etc/passwd", sequencer=sequencer(1))))
    assert "'..'" in problem.reason


def test_parse_event_ignores_keys_outside_the_synced_set() -> None:
    batch = parse_event(s3_event(record("other/x.py", sequencer=sequencer(1))), BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert not batch.changes and not batch.malformed
    assert "outside dags/" in batch.ignored[0].reason


def test_parse_event_ignores_folder_markers() -> None:
    batch = parse_event(s3_event(record("dags/sub/", sequencer=sequencer(1))), BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert batch.ignored[0].reason == "folder marker, nothing to write"


def test_parse_event_ignores_event_types_that_do_not_change_content() -> None:
    raw = record("dags/a.py", sequencer=sequencer(1), event="ObjectRestore:Completed")
    batch = parse_event(s3_event(raw), BUCKET)
    assert isinstance(batch, ChangeBatch)
    assert not batch.changes and "does not change content" in batch.ignored[0].reason


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("dags/../x.py", "'..'"),
        ("dags/./x.py", "'.'"),
        ("dags//x.py", "empty segment"),
        ("dags/a\x00.py", "NUL"),
        ("dags/a\nb.py", "control character"),
        ("dags\\..\\x.py", "backslash"),
        ("dags/" + "a" * 256, "longer than 255 bytes"),
        ("dags/.openmwaa-tmp.x", "reserved"),
    ],
)
def test_fails_when_key_is_unsafe(key: str, reason: str) -> None:
    problem = key_problem(key)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("key", ["dags/a.py", "dags/sub/dir/b.sql", "dags/ü ñ.py", "startup.sh"])
def test_key_problem_accepts_ordinary_keys(key: str) -> None:
    assert key_problem(key) is None


def test_classify_maps_keys_to_kinds() -> None:
    assert classify("dags/x/y.txt") is KeyKind.DAG_FILE
    assert classify("plugins.zip") is KeyKind.PLUGINS
    assert classify("requirements.txt") is KeyKind.REQUIREMENTS
    assert classify("startup.sh") is KeyKind.STARTUP
    assert classify("dags/") is None
    assert classify("docs/requirements.txt") is None


# --------------------------------------------------------------------------- ordering


def test_compare_sequencers_pads_shorter_value_with_zeros() -> None:
    # Lexicographically "FF" > "0100", but padded: "00FF" < "0100".
    assert compare_sequencers("FF", "0100") == -1
    assert compare_sequencers("0100", "FF") == 1


def test_compare_sequencers_ignores_case_and_leading_zeros() -> None:
    assert compare_sequencers("00ab", "AB") == 0


@given(st.integers(0, 2**72), st.integers(0, 2**72), st.integers(0, 4), st.integers(0, 4))
def test_compare_sequencers_matches_numeric_order(a: int, b: int, pad_a: int, pad_b: int) -> None:
    left = "0" * pad_a + f"{a:X}"
    right = "0" * pad_b + f"{b:x}"
    assert compare_sequencers(left, right) == (a > b) - (a < b)


def test_order_verdict_first_event_is_newer() -> None:
    assert order_verdict("01", None) is Order.NEWER


def test_order_verdict_same_sequencer_is_duplicate() -> None:
    assert order_verdict("00A0", entry("A0")) is Order.DUPLICATE


def test_order_verdict_older_sequencer_is_stale() -> None:
    assert order_verdict("9F", entry("00A0")) is Order.STALE


def test_order_verdict_newer_sequencer_after_tombstone_is_newer() -> None:
    assert order_verdict("A1", entry("A0", deleted=True)) is Order.NEWER


def test_order_verdict_entry_without_sequencer_accepts_any_event() -> None:
    assert order_verdict("01", entry(None, source="reconcile")) is Order.NEWER


# --------------------------------------------------------------------------- pinning


def test_pin_problem_ignores_event_for_other_version() -> None:
    change = only_change(
        s3_event(record("requirements.txt", sequencer=sequencer(1), version_id="v2"))
    )
    problem = pin_problem(change, "v1")
    assert problem is not None and "pinned to version v1" in problem


def test_pin_problem_accepts_event_for_pinned_version() -> None:
    change = only_change(
        s3_event(record("requirements.txt", sequencer=sequencer(1), version_id="v1"))
    )
    assert pin_problem(change, "v1") is None


def test_pin_problem_accepts_any_version_when_not_pinned() -> None:
    change = only_change(s3_event(record("requirements.txt", sequencer=sequencer(1))))
    assert pin_problem(change, None) is None


# --------------------------------------------------------------------------- reconcile


def obj(key: str, etag: str = "e1", size: int = 10, version: str | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, etag=etag, size=size, version_id=version)


def dag_fix(desired: ObjectInfo | None, entry_: Entry | None, local_size: int | None) -> Fix:
    """The decision for one dags/ key, as the reconcile takes it."""
    return reconcile_fix(
        desired,
        entry_,
        exists_locally=local_size is not None,
        in_place=local_size is not None and entry_ is not None and entry_.size == local_size,
    )


def test_reconcile_fix_fetches_missing_file() -> None:
    assert dag_fix(obj("dags/a.py"), None, None) is Fix.FETCH


def test_reconcile_fix_fetches_changed_etag() -> None:
    assert dag_fix(obj("dags/a.py", etag="e2"), entry(), 10) is Fix.FETCH


def test_reconcile_fix_fetches_file_whose_size_on_efs_differs() -> None:
    assert dag_fix(obj("dags/a.py"), entry(), 3) is Fix.FETCH


def test_reconcile_fix_fetches_file_present_without_state() -> None:
    assert dag_fix(obj("dags/a.py"), None, 10) is Fix.FETCH


def test_reconcile_fix_removes_extra_file() -> None:
    assert dag_fix(None, None, 5) is Fix.REMOVE


def test_reconcile_fix_keeps_matching_file() -> None:
    assert dag_fix(obj("dags/a.py"), entry(), 10) is Fix.KEEP


def test_reconcile_fix_keeps_nothing_when_absent_on_both_sides() -> None:
    assert dag_fix(None, entry(deleted=True), None) is Fix.KEEP


def test_reconcile_fix_fetches_when_pinned_version_differs() -> None:
    fix = reconcile_fix(
        obj("requirements.txt", version="v2"),
        entry(version_id="v1"),
        exists_locally=True,
        in_place=True,
        pinned="v2",
    )
    assert fix is Fix.FETCH


def test_reconcile_fix_refetches_over_tombstone() -> None:
    fix = reconcile_fix(obj("dags/a.py"), entry(deleted=True), exists_locally=False, in_place=False)
    assert fix is Fix.FETCH


# --------------------------------------------------------------------------- state and report


def test_entry_round_trips_through_json() -> None:
    original = entry(plugins_dir="20250101T000000Z-abc-1234")
    assert Entry.from_json(original.to_json()) == original


def test_report_to_dict_caps_long_lists() -> None:
    report = Report(mode="reconcile", written=[f"dags/{i}.py" for i in range(5)])
    result = report.to_dict(limit=2)
    assert result["written"] == ["dags/0.py", "dags/1.py"]
    assert result["counts"] == {"written": 5, "removed": 0, "skipped": 0, "errors": 0, "failed": 0}
    assert result["truncated_to"] == 2
