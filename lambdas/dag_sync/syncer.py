"""The ``Syncer``: applies a batch of S3 changes, or runs a full reconcile.

``handler.py`` parses the event (``events.parse_event``) and hands the resulting
``Invocation`` to ``Syncer.handle``. The syncer decides with ``keys`` and ``verdicts`` and
talks to nothing itself: every side effect goes through the ports (``ObjectStore``,
``StateStore``, ``FileTree``, ``Roller``) that ``handler.py`` wires to boto3 and to the EFS
mount.

Semantics in one paragraph: an S3 event is a *signal that a key changed*. Per key we keep
the last applied sequencer; an event whose sequencer is not newer is a stale or duplicate
no-op. A newer event makes the EFS copy converge to the object's current state in S3 (its
latest version, or the pinned version for requirements.txt / plugins.zip / startup.sh), so
the copy on EFS is never older than the newest event applied. Every change to a key happens
under the lock of the key's state shard, so concurrent invocations cannot interleave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import openmwaa_contracts as contracts

from dag_sync import dag_feedback
from dag_sync.keys import ROLLING_KEYS, KeyKind, classify, scope_problem
from dag_sync.model import (
    Action,
    ChangeBatch,
    Entry,
    Invocation,
    ObjectInfo,
    ReconcileRequest,
    RefusedContentError,
    Report,
    S3Change,
    TransientError,
)
from dag_sync.ports import FileTree, ObjectStore, Roller, ShardTxn, StateStore
from dag_sync.verdicts import Fix, Order, order_verdict, pin_problem, reconcile_fix

logger = logging.getLogger("dag_sync")

# A temp file older than this belongs to a dead invocation (Lambda's maximum timeout is
# 15 minutes), so a reconcile may delete it.
STALE_TEMP_SECONDS = 15 * 60
# .py files larger than this are synced but not analysed for feedback.
MAX_FEEDBACK_BYTES = 5 * 1024 * 1024


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
        for info in self.store.list_prefix(contracts.DAGS_PREFIX):
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
        written = {k for k in report.written if k.startswith(contracts.DAGS_PREFIX)}
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
