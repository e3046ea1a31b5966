"""S3 event notifications in, checked changes out.

``parse_event`` tells a reconcile request (schedule, deploy time, direct) from a batch of
S3 records, and never raises on bad input: each record becomes an ``S3Change`` when it is
well formed and its key is in scope (``keys.scope_problem``), or a ``Problem`` that is
reported as malformed or ignored. Whether a change is then applied is decided per key by
``verdicts.order_verdict`` on its ``sequencer``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

from dag_sync.keys import scope_problem
from dag_sync.model import (
    Action,
    ChangeBatch,
    Invocation,
    Problem,
    ReconcileRequest,
    S3Change,
    normalize_etag,
)

MAX_SEQUENCER_LENGTH = 128

_HEX = re.compile(r"[0-9A-Fa-f]+")


def is_sequencer(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SEQUENCER_LENGTH
        and _HEX.fullmatch(value) is not None
    )


def parse_event(event: object, bucket: str) -> Invocation:
    """Tell a reconcile request from S3 records; never raises on bad input."""
    if not isinstance(event, Mapping):
        return ChangeBatch(
            malformed=(Problem("event", f"event is a {type(event).__name__}, not an object"),)
        )
    if not event:
        return ReconcileRequest("direct")
    if "Records" in event:
        return _parse_records(event["Records"], bucket)
    if event.get("detail-type") == "Scheduled Event":
        return ReconcileRequest("schedule")
    if "action" in event:
        if event["action"] == "reconcile":
            return ReconcileRequest("direct")
        return ChangeBatch(
            malformed=(
                Problem("event", f"unknown action {event['action']!r}; expected 'reconcile'"),
            )
        )
    keys = ", ".join(sorted(str(k) for k in event))
    return ChangeBatch(
        malformed=(
            Problem(
                "event",
                f"unrecognised event with keys [{keys}]; expected S3 'Records', a "
                "'Scheduled Event' or {'action': 'reconcile'}",
            ),
        )
    )


def _parse_records(records: object, bucket: str) -> ChangeBatch:
    if not isinstance(records, list):
        return ChangeBatch(malformed=(Problem("Records", "'Records' is not a list"),))
    changes: list[S3Change] = []
    malformed: list[Problem] = []
    ignored: list[Problem] = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        result = parse_record(record, bucket, where)
        if isinstance(result, S3Change):
            changes.append(result)
        elif result[0]:
            malformed.append(result[1])
        else:
            ignored.append(result[1])
    return ChangeBatch(tuple(changes), tuple(malformed), tuple(ignored))


def parse_record(record: object, bucket: str, where: str) -> S3Change | tuple[bool, Problem]:
    """An ``S3Change``, or (malformed, problem): malformed=False means a well-formed record
    that we deliberately ignore (other event type, key out of scope)."""

    def bad(reason: str) -> tuple[bool, Problem]:
        return True, Problem(where, reason)

    if not isinstance(record, Mapping):
        return bad("record is not an object")
    source = record.get("eventSource")
    if source != "aws:s3":
        return bad(f"eventSource is {source!r}, expected 'aws:s3'")
    name = record.get("eventName")
    if not isinstance(name, str) or not name:
        return bad("eventName is missing")
    s3 = record.get("s3")
    if not isinstance(s3, Mapping):
        return bad("'s3' is missing or not an object")
    bucket_obj = s3.get("bucket")
    obj = s3.get("object")
    if not isinstance(bucket_obj, Mapping) or not isinstance(obj, Mapping):
        return bad("'s3.bucket' or 's3.object' is missing")
    if bucket_obj.get("name") != bucket:
        return bad(f"bucket is {bucket_obj.get('name')!r}, this function syncs {bucket!r}")
    raw_key = obj.get("key")
    if not isinstance(raw_key, str) or not raw_key:
        return bad("'s3.object.key' is missing")
    try:
        key = unquote_plus(raw_key, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return bad(f"key {raw_key!r} is not valid URL-encoded UTF-8")
    if name.startswith("ObjectCreated:"):
        action = Action.PUT
    elif name.startswith("ObjectRemoved:"):
        action = Action.DELETE
    else:
        return False, Problem(key, f"event type {name} does not change content")
    scope = scope_problem(key)
    if scope is not None:
        refused, reason = scope
        return refused, Problem(key, reason)
    sequencer = obj.get("sequencer")
    if not is_sequencer(sequencer):
        return bad(f"key {key!r}: 'sequencer' {sequencer!r} is missing or not a hex string")
    assert isinstance(sequencer, str)
    version = obj.get("versionId")
    etag = obj.get("eTag")
    size = obj.get("size")
    return S3Change(
        key=key,
        action=action,
        sequencer=sequencer,
        version_id=version if isinstance(version, str) and version else None,
        etag=normalize_etag(etag) if isinstance(etag, str) and etag else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        event_name=name,
    )
