"""The per-key decisions, as pure functions of what is known about the key.

``order_verdict``: is an event newer than what was applied (S3 sequencers compared as AWS
documents)? ``pin_problem``: is the event for the version the key is pinned to?
``reconcile_fix``: what must a reconcile do so that EFS matches the bucket?
"""

from __future__ import annotations

import enum

from dag_sync.model import Entry, ObjectInfo, S3Change


class Order(enum.Enum):
    NEWER = "newer"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Fix(enum.Enum):
    KEEP = "keep"
    FETCH = "fetch"
    REMOVE = "remove"


def compare_sequencers(a: str, b: str) -> int:
    """-1, 0 or 1. S3 sequencers are hex strings of varying length: AWS documents that they
    compare lexicographically after left-padding the shorter one with zeros."""
    width = max(len(a), len(b))
    left = a.upper().rjust(width, "0")
    right = b.upper().rjust(width, "0")
    return (left > right) - (left < right)


def order_verdict(sequencer: str, entry: Entry | None) -> Order:
    if entry is None or entry.sequencer is None:
        return Order.NEWER
    cmp = compare_sequencers(sequencer, entry.sequencer)
    if cmp > 0:
        return Order.NEWER
    return Order.DUPLICATE if cmp == 0 else Order.STALE


def pin_problem(change: S3Change, pinned: str | None) -> str | None:
    """Why an event must be ignored because its key is pinned to another version."""
    if pinned is None or change.version_id == pinned:
        return None
    return (
        f"event is for version {change.version_id or 'null'} but {change.key} is pinned "
        f"to version {pinned}"
    )


def reconcile_fix(
    desired: ObjectInfo | None,
    entry: Entry | None,
    *,
    exists_locally: bool,
    in_place: bool,
    pinned: str | None = None,
) -> Fix:
    """What one key needs so that EFS matches the bucket.

    ``in_place``: the local copy is the one ``entry`` describes (same size on disk, or the
    plugins link points at the recorded folder). ETags cannot be recomputed locally, so the
    recorded ETag stands for the content.
    """
    if desired is None:
        return Fix.REMOVE if exists_locally else Fix.KEEP
    if (
        entry is not None
        and not entry.deleted
        and entry.etag == desired.etag
        and entry.size == desired.size
        and (pinned is None or entry.version_id == pinned)
        and in_place
    ):
        return Fix.KEEP
    return Fix.FETCH
