"""The vocabulary of the DAG sync: data only, no decisions.

A decoded S3 change (``S3Change``) and the invocation it belongs to (``ChangeBatch`` or
``ReconcileRequest``), what S3 says about an object (``ObjectInfo``), what we last applied
per key (``Entry``, persisted by ``state_store.py``), the two errors that decide between
"retry" and "report", and ``Report``, what one invocation did.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger("dag_sync")


class Action(enum.Enum):
    PUT = "put"
    DELETE = "delete"


class TransientError(Exception):
    """S3 or ECS asked us to retry later (throttling, 5xx, timeouts, a broken stream).

    The invocation fails after finishing the other work, so Lambda's async retry delivers
    the event again; everything already applied is then a duplicate no-op.
    """


class RefusedContentError(Exception):
    """The object cannot be applied as is (hostile zip, path conflict). Previous content is
    kept and the error is reported; retrying would not help."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as S3 describes it. ``etag`` is stored without quotes."""

    key: str
    etag: str
    size: int
    version_id: str | None = None


@dataclass(frozen=True)
class S3Change:
    """One S3 event record, decoded and checked."""

    key: str
    action: Action
    sequencer: str
    version_id: str | None
    etag: str | None
    size: int | None
    event_name: str


@dataclass(frozen=True)
class Problem:
    """A record or key we do not apply, with the reason in plain words."""

    where: str
    reason: str


@dataclass(frozen=True)
class ReconcileRequest:
    trigger: str


@dataclass(frozen=True)
class ChangeBatch:
    changes: tuple[S3Change, ...] = ()
    malformed: tuple[Problem, ...] = ()
    ignored: tuple[Problem, ...] = ()


Invocation = ReconcileRequest | ChangeBatch


@dataclass(frozen=True)
class Entry:
    """What we last applied for one key (persisted under .openmwaa/state/)."""

    sequencer: str | None
    etag: str | None
    size: int | None
    version_id: str | None
    deleted: bool
    applied_at: float
    source: str
    plugins_dir: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "sequencer": self.sequencer,
            "etag": self.etag,
            "size": self.size,
            "version_id": self.version_id,
            "deleted": self.deleted,
            "applied_at": self.applied_at,
            "source": self.source,
            "plugins_dir": self.plugins_dir,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Entry:
        def opt_str(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        size = data.get("size")
        applied_at = data.get("applied_at")
        return cls(
            sequencer=opt_str("sequencer"),
            etag=opt_str("etag"),
            size=size if isinstance(size, int) else None,
            version_id=opt_str("version_id"),
            deleted=data.get("deleted") is True,
            applied_at=float(applied_at) if isinstance(applied_at, int | float) else 0.0,
            source=opt_str("source") or "unknown",
            plugins_dir=opt_str("plugins_dir"),
        )


@dataclass
class Report:
    """What one invocation did; ``to_dict`` is the Lambda's JSON result."""

    mode: str
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    rolled: list[str] = field(default_factory=list)
    syntax_errors: list[dict[str, object]] = field(default_factory=list)
    duplicate_dag_ids: dict[str, list[str]] = field(default_factory=dict)
    # literal dag_ids per .py file written (None: file removed); feeds the duplicate check
    dag_id_changes: dict[str, list[str] | None] = field(default_factory=dict)

    def merge(self, other: Report) -> None:
        """Add a partial report (one reconcile shard) into this one."""
        self.written += other.written
        self.removed += other.removed
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.errors += other.errors
        self.failed += other.failed
        self.syntax_errors += other.syntax_errors
        self.dag_id_changes.update(other.dag_id_changes)

    def skip(self, key: str, reason: str) -> None:
        logger.info("skipped %s: %s", key, reason)
        self.skipped.append({"key": key, "reason": reason})

    def error(self, key: str, reason: str) -> None:
        logger.error("not applied %s: %s", key, reason)
        self.errors.append({"key": key, "error": reason})

    def fail(self, key: str, reason: str) -> None:
        logger.error("failed %s (will be retried): %s", key, reason)
        self.failed.append({"key": key, "error": reason})

    def to_dict(self, limit: int = 1000) -> dict[str, object]:
        def cap(items: Sequence[object]) -> list[object]:
            return list(items[:limit])

        result: dict[str, object] = {
            "mode": self.mode,
            "written": cap(self.written),
            "removed": cap(self.removed),
            "unchanged": self.unchanged,
            "skipped": cap(self.skipped),
            "errors": cap(self.errors),
            "failed": cap(self.failed),
            "rolled": list(self.rolled),
            "syntax_errors": cap(self.syntax_errors),
            "duplicate_dag_ids": self.duplicate_dag_ids,
            "counts": {
                "written": len(self.written),
                "removed": len(self.removed),
                "skipped": len(self.skipped),
                "errors": len(self.errors),
                "failed": len(self.failed),
            },
        }
        if any(len(x) > limit for x in (self.written, self.removed, self.skipped, self.errors)):
            result["truncated_to"] = limit
        return result


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')
