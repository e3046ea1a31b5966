"""Pure decision core of the DAG sync Lambda.

Nothing here talks to AWS or writes files: it parses events, validates keys, orders S3
events by their ``sequencer``, decides what a reconcile must fix, and drives the side
effects through four small ports (``ObjectStore``, ``StateStore``, ``FileTree``,
``Roller``) that ``handler.py`` wires to boto3 and to the EFS mount.

Semantics in one paragraph: an S3 event is a *signal that a key changed*. Per key we keep
the last applied sequencer; an event whose sequencer is not newer is a stale or duplicate
no-op. A newer event makes the EFS copy converge to the object's current state in S3 (its
latest version, or the pinned version for requirements.txt / plugins.zip / startup.sh), so
the copy on EFS is never older than the newest event applied. Every change to a key happens
under the lock of the key's state shard, so concurrent invocations cannot interleave.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import unquote_plus

from dag_sync import dag_feedback

logger = logging.getLogger("dag_sync")

DAGS_PREFIX = "dags/"
PLUGINS_KEY = "plugins.zip"
REQUIREMENTS_KEY = "requirements.txt"
STARTUP_KEY = "startup.sh"
ROLLING_KEYS: tuple[str, ...] = (PLUGINS_KEY, REQUIREMENTS_KEY, STARTUP_KEY)
# Temporary files and folders we create carry this prefix; a bucket key may not use it.
TEMP_PREFIX = ".openmwaa-tmp."
# A temp file older than this belongs to a dead invocation (Lambda's maximum timeout is
# 15 minutes), so a reconcile may delete it.
STALE_TEMP_SECONDS = 15 * 60
# .py files larger than this are synced but not analysed for feedback.
MAX_FEEDBACK_BYTES = 5 * 1024 * 1024
MAX_SEQUENCER_LENGTH = 128
NAME_MAX_BYTES = 255

_HEX = re.compile(r"[0-9A-Fa-f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KeyKind(enum.Enum):
    DAG_FILE = "dag_file"
    PLUGINS = "plugins"
    REQUIREMENTS = "requirements"
    STARTUP = "startup"


_SPECIAL_KINDS = {
    PLUGINS_KEY: KeyKind.PLUGINS,
    REQUIREMENTS_KEY: KeyKind.REQUIREMENTS,
    STARTUP_KEY: KeyKind.STARTUP,
}


class Action(enum.Enum):
    PUT = "put"
    DELETE = "delete"


class Order(enum.Enum):
    NEWER = "newer"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Fix(enum.Enum):
    KEEP = "keep"
    FETCH = "fetch"
    REMOVE = "remove"


class TransientError(Exception):
    """S3 or ECS asked us to retry later (throttling, 5xx, timeouts, a broken stream).

    The invocation fails after finishing the other work, so Lambda's async retry delivers
    the event again; everything already applied is then a duplicate no-op.
    """


class RefusedContentError(Exception):
    """The object cannot be applied as is (hostile zip, path conflict). Previous content is
    kept and the error is reported; retrying would not help."""


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- keys


def key_problem(key: str) -> str | None:
    """Why ``key`` must not become a path under the mount, or None when it is safe."""
    if not key:
        return "the key is empty"
    if "\x00" in key:
        return "the key contains a NUL character"
    if _CONTROL.search(key):
        return "the key contains a control character"
    if "\\" in key:
        return "the key contains a backslash; use '/' between folders"
    if key.startswith("/"):
        return "the key is an absolute path"
    for part in key.split("/"):
        if part == "..":
            return "the key contains a '..' segment that would escape the mount"
        if part == ".":
            return "the key contains a '.' segment"
        if part == "":
            return "the key contains an empty segment ('//')"
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
            return f"a segment of the key is longer than {NAME_MAX_BYTES} bytes"
        if part.startswith(TEMP_PREFIX):
            return f"names starting with {TEMP_PREFIX!r} are reserved for temporary files"
    return None


def classify(key: str) -> KeyKind | None:
    """The kind of file ``key`` maps to, or None when the key is outside the synced set."""
    special = _SPECIAL_KINDS.get(key)
    if special is not None:
        return special
    if key.startswith(DAGS_PREFIX) and len(key) > len(DAGS_PREFIX) and not key.endswith("/"):
        return KeyKind.DAG_FILE
    return None


def scope_problem(key: str) -> tuple[bool, str] | None:
    """None when ``key`` is synced; otherwise (refused, reason): refused keys are hostile or
    unusable, the others are simply out of scope."""
    if key.endswith("/"):
        return False, "folder marker, nothing to write"
    problem = key_problem(key)
    if problem is not None:
        return True, problem
    if classify(key) is None:
        return False, "outside dags/ and not plugins.zip, requirements.txt or startup.sh"
    return None


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


# --------------------------------------------------------------------------- ordering


def is_sequencer(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SEQUENCER_LENGTH
        and _HEX.fullmatch(value) is not None
    )


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


# --------------------------------------------------------------------------- events


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


# --------------------------------------------------------------------------- reconcile


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


# --------------------------------------------------------------------------- ports


class ObjectBody(Protocol):
    @property
    def info(self) -> ObjectInfo: ...

    def chunks(self) -> Iterator[bytes]:
        """The content; raises TransientError if the stream breaks or ends short."""
        ...


class ObjectStore(Protocol):
    def head(self, key: str, version_id: str | None) -> ObjectInfo | None:
        """None when the key (or that version) does not exist."""
        ...

    def open(self, key: str, version_id: str | None) -> ObjectBody | None:
        """None when the key (or that version) does not exist."""
        ...

    def list_prefix(self, prefix: str) -> Iterator[ObjectInfo]: ...


class ShardTxn(Protocol):
    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, entry: Entry) -> None: ...


class StateStore(Protocol):
    def shard_of(self, key: str) -> str: ...

    def transaction(self, shard: str) -> AbstractContextManager[ShardTxn]:
        """Exclusive lock on one shard; changes are saved atomically on normal exit."""
        ...

    def roll_lock(self) -> AbstractContextManager[None]: ...

    def add_roll_token(self, key: str) -> None:
        """Record that a rolling file is about to change (caller holds roll_lock)."""
        ...

    def roll_tokens(self) -> list[str]: ...

    def clear_roll_tokens(self, tokens: Sequence[str]) -> None: ...

    def update_dag_ids(
        self, changes: Mapping[str, Sequence[str] | None], keep_only: set[str] | None
    ) -> dict[str, list[str]]:
        """Apply per-file dag_id changes (None = file gone); return every dag_id defined
        in more than one file, with its files."""
        ...

    def dag_id_files(self) -> set[str]: ...


class FileTree(Protocol):
    """The EFS mount. Paths are bucket keys ("dags/a.py", "requirements.txt")."""

    def write_file(
        self,
        path: str,
        chunks: Iterable[bytes],
        *,
        executable: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> int: ...

    def remove_file(self, path: str) -> bool: ...

    def file_size(self, path: str) -> int | None: ...

    def read_file(self, path: str, limit: int) -> bytes | None: ...

    def walk_dags(self) -> dict[str, int]: ...

    def clean_stale_temp(self, older_than: float) -> list[str]: ...

    def install_plugins(
        self,
        chunks: Iterable[bytes],
        *,
        label: str,
        before_commit: Callable[[], None] | None = None,
    ) -> str: ...

    def remove_plugins(self) -> bool: ...

    def plugins_current(self) -> str | None: ...


class Roller(Protocol):
    def roll(self) -> list[str]:
        """Force a new deployment of the services; returns the ones rolled."""
        ...


# --------------------------------------------------------------------------- syncer


@dataclass(frozen=True)
class Settings:
    pinned_versions: Mapping[str, str] = field(default_factory=dict)
    max_feedback_bytes: int = MAX_FEEDBACK_BYTES
    # dags/ shards reconciled in parallel: S3 GETs and EFS writes are latency-bound.
    reconcile_workers: int = 16


class Syncer:
    """Applies events and reconciles, using the ports for every side effect."""

    def __init__(
        self,
        store: ObjectStore,
        state: StateStore,
        files: FileTree,
        roller: Roller,
        settings: Settings,
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self.state = state
        self.files = files
        self.roller = roller
        self.settings = settings
        self.now = now

    # ---- entry point

    def handle(self, invocation: Invocation) -> Report:
        if isinstance(invocation, ReconcileRequest):
            logger.info("full reconcile (trigger: %s)", invocation.trigger)
            report = Report(mode="reconcile")
            keep_only = self._reconcile(report)
        else:
            report = Report(mode="events")
            self._apply_batch(invocation, report)
            keep_only = None
        self._finish_feedback(report, keep_only)
        self._roll(report)
        return report

    # ---- event path

    def _apply_batch(self, batch: ChangeBatch, report: Report) -> None:
        for problem in batch.malformed:
            report.error(problem.where, f"malformed event: {problem.reason}")
        for problem in batch.ignored:
            report.skip(problem.where, problem.reason)
        for change in batch.changes:
            try:
                self._apply_change(change, report)
            except TransientError as exc:
                report.fail(change.key, str(exc))
            except RefusedContentError as exc:
                report.error(change.key, str(exc))
            except Exception as exc:
                logger.exception("unexpected error applying %s", change.key)
                report.fail(change.key, f"{type(exc).__name__}: {exc}")

    def _apply_change(self, change: S3Change, report: Report) -> None:
        kind = classify(change.key)
        assert kind is not None  # parse_record only yields keys in scope
        pinned = self.settings.pinned_versions.get(change.key)
        problem = pin_problem(change, pinned)
        if problem is not None:
            report.skip(change.key, problem)
            return
        with self.state.transaction(self.state.shard_of(change.key)) as txn:
            entry = txn.get(change.key)
            verdict = order_verdict(change.sequencer, entry)
            if verdict is not Order.NEWER:
                applied = entry.sequencer if entry else None
                report.skip(
                    change.key,
                    f"{verdict.value} event (sequencer {change.sequencer}, applied {applied})",
                )
                return
            if (
                change.action is Action.PUT
                and entry is not None
                and not entry.deleted
                and change.etag is not None
                and change.etag == entry.etag
                and self._in_place(kind, change.key, entry)
            ):
                txn.put(change.key, replace(entry, sequencer=change.sequencer, source="event"))
                report.unchanged += 1
                logger.info("unchanged %s (same ETag %s)", change.key, change.etag)
                return
            if change.action is Action.DELETE and self.store.head(change.key, pinned) is None:
                self._remove(kind, change.key, report)
                txn.put(change.key, self._tombstone(change.sequencer, "event"))
                return
            new_entry = self._fetch(kind, change.key, pinned, change.sequencer, "event", report)
            if new_entry is None:
                report.skip(
                    change.key,
                    "object no longer exists; a later delete event or reconcile handles it",
                )
                return
            txn.put(change.key, new_entry)

    # ---- reconcile

    def _reconcile(self, report: Report) -> set[str]:
        started = self.now()
        for path in self.files.clean_stale_temp(started - STALE_TEMP_SECONDS):
            logger.info("removed stale temporary file %s", path)
        desired: dict[str, ObjectInfo | None] = {}
        for info in self.store.list_prefix(DAGS_PREFIX):
            scope = scope_problem(info.key)
            if scope is None:
                desired[info.key] = info
            elif scope[0]:
                report.error(info.key, f"refused key: {scope[1]}")
        local = self.files.walk_dags()
        # The three rolling files first, one at a time (they take the roll lock, and POSIX
        # locks do not exclude threads of one process); then dags/ shards in parallel,
        # each shard handled by exactly one thread.
        for key in ROLLING_KEYS:
            pinned = self.settings.pinned_versions.get(key)
            try:
                wanted = self.store.head(key, pinned)
            except TransientError as exc:
                report.fail(key, str(exc))
                continue
            except Exception as exc:
                # A 400 (malformed pinned version id), a 403, ...: this key only; dags/ is
                # still healed, and the invocation raises at the end naming the key.
                version = f"pinned version {pinned}" if pinned else "latest version"
                report.fail(key, f"HEAD of {key} ({version}) failed: {type(exc).__name__}: {exc}")
                continue
            with self.state.transaction(self.state.shard_of(key)) as txn:
                self._reconcile_guarded(key, wanted, None, txn, started, report)
        by_shard: dict[str, list[str]] = {}
        for key in sorted(set(desired) | set(local)):
            by_shard.setdefault(self.state.shard_of(key), []).append(key)

        def run_shard(shard: str) -> Report:
            partial = Report(mode="reconcile")
            with self.state.transaction(shard) as txn:
                for key in by_shard[shard]:
                    self._reconcile_guarded(
                        key, desired.get(key), local.get(key), txn, started, partial
                    )
            return partial

        workers = max(1, min(self.settings.reconcile_workers, len(by_shard)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
            for partial in pool.map(run_shard, sorted(by_shard)):
                report.merge(partial)
        report.written.sort()
        report.removed.sort()
        written = {k for k in report.written if k.startswith(DAGS_PREFIX)}
        present = {k for k in (set(local) | written) - set(report.removed) if k.endswith(".py")}
        for key in sorted(present - self.state.dag_id_files() - set(report.dag_id_changes)):
            source = self.files.read_file(key, self.settings.max_feedback_bytes)
            if source is not None:
                self._analyse(key, source, report)
        return present

    def _reconcile_guarded(
        self,
        key: str,
        desired: ObjectInfo | None,
        local_size: int | None,
        txn: ShardTxn,
        started: float,
        report: Report,
    ) -> None:
        try:
            self._reconcile_key(key, desired, local_size, txn, started, report)
        except TransientError as exc:
            report.fail(key, str(exc))
        except RefusedContentError as exc:
            report.error(key, str(exc))
        except Exception as exc:
            logger.exception("unexpected error reconciling %s", key)
            report.fail(key, f"{type(exc).__name__}: {exc}")

    def _reconcile_key(
        self,
        key: str,
        desired: ObjectInfo | None,
        local_size: int | None,
        txn: ShardTxn,
        started: float,
        report: Report,
    ) -> None:
        # Keys come from the listing, the dags/ walk or the three rolling names.
        kind = classify(key) or KeyKind.DAG_FILE
        entry = txn.get(key)
        if entry is not None and entry.applied_at >= started:
            report.skip(key, "changed by an event while this reconcile ran")
            return
        pinned = self.settings.pinned_versions.get(key)
        if kind is KeyKind.PLUGINS:
            current = self.files.plugins_current()
            exists = current is not None
            in_place = exists and entry is not None and entry.plugins_dir == current
        else:
            size = local_size if kind is KeyKind.DAG_FILE else self.files.file_size(key)
            exists = size is not None
            in_place = exists and entry is not None and entry.size == size
        fix = reconcile_fix(desired, entry, exists_locally=exists, in_place=in_place, pinned=pinned)
        if fix is Fix.KEEP:
            if desired is not None:
                report.unchanged += 1
            elif pinned is not None and key in ROLLING_KEYS:
                logger.warning("%s is pinned to version %s, which does not exist", key, pinned)
            return
        sequencer = entry.sequencer if entry else None
        if fix is Fix.REMOVE:
            if pinned is not None:
                logger.warning(
                    "%s is pinned to version %s, which does not exist: removing it", key, pinned
                )
            self._remove(kind, key, report)
            txn.put(key, self._tombstone(sequencer, "reconcile"))
            return
        new_entry = self._fetch(kind, key, pinned, sequencer, "reconcile", report)
        if new_entry is None:
            report.skip(key, "object disappeared during the reconcile")
            return
        txn.put(key, new_entry)

    # ---- shared effects

    def _in_place(self, kind: KeyKind, key: str, entry: Entry) -> bool:
        if kind is KeyKind.PLUGINS:
            return entry.plugins_dir is not None and self.files.plugins_current() == (
                entry.plugins_dir
            )
        return self.files.file_size(key) == entry.size

    def _tombstone(self, sequencer: str | None, source: str) -> Entry:
        return Entry(
            sequencer=sequencer,
            etag=None,
            size=None,
            version_id=None,
            deleted=True,
            applied_at=self.now(),
            source=source,
        )

    def _fetch(
        self,
        kind: KeyKind,
        key: str,
        version: str | None,
        sequencer: str | None,
        source: str,
        report: Report,
    ) -> Entry | None:
        body = self.store.open(key, version)
        if body is None:
            return None
        info = body.info
        rolling = kind is not KeyKind.DAG_FILE
        mark = (lambda: self.state.add_roll_token(key)) if rolling else None
        plugins_dir: str | None = None
        captured = bytearray()
        analyse = kind is KeyKind.DAG_FILE and key.endswith(".py")
        limit = self.settings.max_feedback_bytes
        lock = self.state.roll_lock() if rolling else nullcontext()
        with lock:
            if kind is KeyKind.PLUGINS:
                plugins_dir = self.files.install_plugins(
                    body.chunks(), label=info.etag, before_commit=mark
                )
            else:
                chunks = _tee(body.chunks(), captured, limit) if analyse else body.chunks()
                self.files.write_file(
                    key, chunks, executable=kind is KeyKind.STARTUP, before_commit=mark
                )
        report.written.append(key)
        logger.info(
            "wrote %s (%d bytes, ETag %s, version %s)", key, info.size, info.etag, info.version_id
        )
        if analyse:
            if len(captured) <= limit:
                self._analyse(key, bytes(captured), report)
            else:
                logger.info("%s is larger than %d bytes: not analysed", key, limit)
        return Entry(
            sequencer=sequencer,
            etag=info.etag,
            size=info.size,
            version_id=info.version_id,
            deleted=False,
            applied_at=self.now(),
            source=source,
            plugins_dir=plugins_dir,
        )

    def _remove(self, kind: KeyKind, key: str, report: Report) -> None:
        if kind is KeyKind.DAG_FILE:
            removed = self.files.remove_file(key)
        else:
            with self.state.roll_lock():
                if kind is KeyKind.PLUGINS:
                    exists = self.files.plugins_current() is not None
                else:
                    exists = self.files.file_size(key) is not None
                if exists:
                    self.state.add_roll_token(key)
                removed = exists and (
                    self.files.remove_plugins()
                    if kind is KeyKind.PLUGINS
                    else self.files.remove_file(key)
                )
        if removed:
            report.removed.append(key)
            logger.info("removed %s", key)
        if kind is KeyKind.DAG_FILE and key.endswith(".py"):
            report.dag_id_changes[key] = None

    def _analyse(self, key: str, source: bytes, report: Report) -> None:
        result = dag_feedback.analyse(source, key)
        if result.syntax_error is not None:
            err = result.syntax_error
            logger.warning("DAG syntax error in %s line %s: %s", key, err.line, err.message)
            report.syntax_errors.append({"file": key, "line": err.line, "message": err.message})
        report.dag_id_changes[key] = list(result.dag_ids)

    def _finish_feedback(self, report: Report, keep_only: set[str] | None) -> None:
        changes = report.dag_id_changes
        if not changes and keep_only is None:
            return
        try:
            duplicates = self.state.update_dag_ids(changes, keep_only)
        except Exception:
            logger.exception("could not update the dag_id index; feedback skipped")
            return
        if keep_only is None:
            touched = {k for k, ids in changes.items() if ids}
            duplicates = {d: f for d, f in duplicates.items() if touched.intersection(f)}
        for dag_id, files in sorted(duplicates.items()):
            logger.warning("duplicate dag_id %r defined in %s", dag_id, ", ".join(files))
        report.duplicate_dag_ids = duplicates

    def _roll(self, report: Report) -> None:
        try:
            with self.state.roll_lock():
                tokens = self.state.roll_tokens()
                if not tokens:
                    return
                report.rolled = self.roller.roll()
                self.state.clear_roll_tokens(tokens)
        except TransientError as exc:
            report.fail("ecs:UpdateService", str(exc))
        except Exception as exc:
            logger.exception("rolling the services failed")
            report.fail("ecs:UpdateService", f"{type(exc).__name__}: {exc}")


def _tee(chunks: Iterable[bytes], sink: bytearray, limit: int) -> Iterator[bytes]:
    for chunk in chunks:
        if len(sink) <= limit:
            sink += chunk
        yield chunk
