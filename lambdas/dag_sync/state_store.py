"""Sync bookkeeping on EFS, under ``<mount>/.openmwaa/``.

``state/<xx>.json``  one of 256 shards (xx = first two hex digits of SHA-256 of the key)::

    {"format": 1,
     "entries": {"dags/a.py": {"sequencer": "0062E99A88DC407460", "etag": "9b2cf5...",
                               "size": 1234, "version_id": "3HL4kq...", "deleted": false,
                               "applied_at": 1732492800.5, "source": "event",
                               "plugins_dir": null}}}

    A delete leaves a tombstone (``deleted: true``) with its sequencer, so a late, stale
    ObjectCreated event cannot bring the file back; tombstones older than 7 days (beyond
    Lambda's 6-hour maximum event age) are pruned when their shard is next written.

``locks/shard-<xx>.lock``  POSIX (fcntl) lock held across read-decide-write-record for every
    key of the shard; EFS supports these locks over NFSv4, so concurrent invocations for
    the same key are serialised. ``locks/roll.lock``, ``locks/dag-file-<xx>.lock`` and
    ``locks/dag-id-<xx>.lock`` likewise (each also taken by a thread lock, since POSIX locks
    do not exclude the threads of one process).

``roll-pending/<ms>-<uuid>.json``  one token per change to requirements.txt, plugins.zip or
    startup.sh, written just before the change becomes visible and deleted once the
    services were rolled, so a failed ecs:UpdateService is retried by the next invocation.

``dag-ids/files/<xx>/<sha256 of the key>.json``  ``{"format": 1, "key": "dags/a.py",
    "dag_ids": ["a"]}``: the literal dag_ids of one .py file (the source of truth).

``dag-ids/ids/<xx>/<sha256 of the dag_id>.json``  ``{"format": 1, "dag_id": "a",
    "files": ["dags/a.py"]}``: the files defining one dag_id, to report duplicates.

    An event changes one file record (under ``dag-file-<xx>``, the file's lock) and, holding
    it, the records of the dag_ids it gained or lost (each under ``dag-id-<xx>``), so its
    cost does not depend on the number of DAG files. A reconcile rebuilds the dag_id records
    from the file records. (``dag_ids.json``, the single index of earlier versions, is
    deleted by the first reconcile.)

Every file is replaced atomically (temp file, fsync, rename), and read without following a
symlink; the folders are resolved without following symlinks (``efs_writer.private_dir``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from dag_sync.efs_writer import atomic_write_bytes, private_dir
from dag_sync.keys import TEMP_PREFIX
from dag_sync.model import Entry

logger = logging.getLogger("dag_sync")

FORMAT = 1
TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600
_SHARD = re.compile(r"[0-9a-f]{2}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(path, threading.Lock())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _read_bytes(path: str) -> bytes:
    """The file's content; a symlink is never followed (raises OSError, ELOOP)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


class _Shard:
    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = entries
        self.dirty = False

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def put(self, key: str, entry: Entry) -> None:
        self.entries[key] = entry
        self.dirty = True


class EfsStateStore:
    """``ports.StateStore`` on the EFS mount."""

    def __init__(self, root: str, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.root = os.path.abspath(root)
        self.base = private_dir(self.root)
        self.state_dir = private_dir(self.root, "state")
        self.lock_dir = private_dir(self.root, "locks")
        self.roll_dir = private_dir(self.root, "roll-pending")
        self.files_dir = private_dir(self.root, "dag-ids", "files")
        self.ids_dir = private_dir(self.root, "dag-ids", "ids")
        self.legacy_index_path = os.path.join(self.base, "dag_ids.json")

    # ---- locks

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        path = os.path.join(self.lock_dir, f"{name}.lock")
        with _thread_lock(path):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                logger.warning("removed the symlink planted at %s (never followed)", path)
                os.unlink(path)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                yield
            finally:
                with contextlib.suppress(OSError):
                    fcntl.lockf(fd, fcntl.LOCK_UN)
                os.close(fd)

    # ---- per-key entries

    def shard_of(self, key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:2]

    def _shard_path(self, shard: str) -> str:
        if not _SHARD.fullmatch(shard):
            raise ValueError(f"invalid shard name {shard!r}")
        return os.path.join(self.state_dir, f"{shard}.json")

    def _load(self, shard: str) -> dict[str, Entry]:
        path = self._shard_path(shard)
        try:
            data = json.loads(_read_bytes(path))
            entries = data["entries"]
            return {str(k): Entry.from_json(v) for k, v in entries.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.error("state shard %s is unreadable (%s); starting it empty", path, exc)
            return {}

    def _save(self, shard: str, entries: Mapping[str, Entry]) -> None:
        horizon = self.now() - TOMBSTONE_TTL_SECONDS
        kept = {
            key: entry.to_json()
            for key, entry in sorted(entries.items())
            if not (entry.deleted and entry.applied_at < horizon)
        }
        payload = json.dumps({"format": FORMAT, "entries": kept}, separators=(",", ":"))
        atomic_write_bytes(self._shard_path(shard), payload.encode("utf-8", "surrogatepass"))

    @contextlib.contextmanager
    def transaction(self, shard: str) -> Iterator[_Shard]:
        with self._locked(f"shard-{shard}"):
            txn = _Shard(self._load(shard))
            yield txn
            if txn.dirty:
                self._save(shard, txn.entries)

    def entries(self) -> dict[str, Entry]:
        """Every entry of every shard (for tests, tools and the benchmark)."""
        result: dict[str, Entry] = {}
        for name in sorted(os.listdir(self.state_dir)):
            if name.endswith(".json") and not name.startswith(TEMP_PREFIX):
                result.update(self._load(name[:-5]))
        return result

    # ---- rolling

    def roll_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._locked("roll")

    def add_roll_token(self, key: str) -> None:
        name = f"{int(self.now() * 1000):015d}-{uuid.uuid4().hex}.json"
        payload = json.dumps({"key": key, "at": self.now()}).encode("utf-8")
        atomic_write_bytes(os.path.join(self.roll_dir, name), payload)

    def roll_tokens(self) -> list[str]:
        return sorted(
            name
            for name in os.listdir(self.roll_dir)
            if name.endswith(".json") and not name.startswith(TEMP_PREFIX)
        )

    def clear_roll_tokens(self, tokens: Sequence[str]) -> None:
        for name in tokens:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.roll_dir, os.path.basename(name)))

    # ---- dag_id index: one record per file and one per dag_id

    def _file_record(self, key: str) -> str:
        digest = _digest(key)
        return os.path.join(self.files_dir, digest[:2], f"{digest}.json")

    def _id_record(self, dag_id: str) -> str:
        digest = _digest(dag_id)
        return os.path.join(self.ids_dir, digest[:2], f"{digest}.json")

    def _read_record(self, path: str) -> dict[str, object] | None:
        try:
            data = json.loads(_read_bytes(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.error("dag_id record %s is unreadable (%s); replacing it", path, exc)
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _strings(record: Mapping[str, object] | None, name: str) -> list[str]:
        values = record.get(name) if record is not None else None
        return [str(v) for v in values] if isinstance(values, list) else []

    def _write_record(self, path: str, payload: Mapping[str, object]) -> None:
        folder = os.path.dirname(path)
        parent = os.path.basename(os.path.dirname(folder))  # "files" or "ids"
        private_dir(self.root, "dag-ids", parent, os.path.basename(folder))
        data = json.dumps({"format": FORMAT, **payload}, sort_keys=True)
        atomic_write_bytes(path, data.encode("utf-8", "surrogatepass"))

    @staticmethod
    def _unlink(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def _set_file(self, key: str, ids: Sequence[str] | None) -> None:
        """Record the dag_ids of one file (None: the file is gone) and move the file in or
        out of the records of the dag_ids it gained or lost, all under the file's lock."""
        path = self._file_record(key)
        with self._locked(f"dag-file-{_digest(key)[:2]}"):
            record = self._read_record(path)
            old = set(self._strings(record, "dag_ids"))
            new = set(ids or ())
            if ids is None:
                self._unlink(path)
            elif record is None or old != new:
                self._write_record(path, {"key": key, "dag_ids": sorted(new)})
            for dag_id in sorted(old ^ new):
                self._set_member(dag_id, key, dag_id in new)

    def _set_member(self, dag_id: str, key: str, present: bool) -> None:
        path = self._id_record(dag_id)
        with self._locked(f"dag-id-{_digest(dag_id)[:2]}"):
            files = set(self._strings(self._read_record(path), "files"))
            wanted = files | {key} if present else files - {key}
            if wanted == files and (files or not os.path.lexists(path)):
                return
            if wanted:
                self._write_record(path, {"dag_id": dag_id, "files": sorted(wanted)})
            else:
                self._unlink(path)

    def _records(self, folder: str) -> list[tuple[str, dict[str, object]]]:
        """(path, content) of every record under ``folder``, read 16 at a time."""
        paths: list[str] = []
        with contextlib.suppress(FileNotFoundError):
            for sub in os.scandir(folder):
                if sub.is_dir(follow_symlinks=False):
                    paths += [
                        e.path
                        for e in os.scandir(sub.path)
                        if e.name.endswith(".json") and not e.name.startswith(TEMP_PREFIX)
                    ]
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="dag-ids") as pool:
            read = list(pool.map(self._read_record, paths))
        return [(p, r) for p, r in zip(paths, read, strict=True) if r is not None]

    def _file_records(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for path, record in self._records(self.files_dir):
            key = record.get("key")
            if isinstance(key, str) and path == self._file_record(key):
                found[key] = self._strings(record, "dag_ids")
            else:
                self._unlink(path)
        return found

    def dag_id_files(self) -> set[str]:
        return set(self._file_records())

    def update_dag_ids(
        self, changes: Mapping[str, Sequence[str] | None], keep_only: set[str] | None
    ) -> dict[str, list[str]]:
        """Apply per-file changes. Event path (``keep_only`` None): returns the duplicates
        among the dag_ids of the changed files, reading only their records. Reconcile:
        forgets files not in ``keep_only``, rebuilds the dag_id records from the file
        records, and returns every duplicate."""
        for key, ids in changes.items():
            self._set_file(key, ids)
        if keep_only is None:
            touched = {i for ids in changes.values() if ids for i in ids}
            return self._duplicates(touched)
        for key in sorted(self.dag_id_files() - keep_only):
            self._set_file(key, None)
        owners: dict[str, set[str]] = {}
        for key, ids in self._file_records().items():
            for dag_id in ids:
                owners.setdefault(dag_id, set()).add(key)
        for path, record in self._records(self.ids_dir):
            recorded = record.get("dag_id")
            if not isinstance(recorded, str) or path != self._id_record(recorded):
                self._unlink(path)
            elif set(self._strings(record, "files")) != owners.get(recorded, set()):
                self._repair(recorded, owners.get(recorded, set()))
        for dag_id, files in sorted(owners.items()):
            if not os.path.lexists(self._id_record(dag_id)):
                self._repair(dag_id, files)
        self._unlink(self.legacy_index_path)
        return {d: sorted(f) for d, f in sorted(owners.items()) if len(f) > 1}

    def _repair(self, dag_id: str, owners: Iterable[str]) -> None:
        """Make a dag_id record match the file records (``owners``, as read earlier, and
        the files it lists), re-read under its lock: an event may be changing them, and it
        updates the dag_id record after its file record, under the same lock."""
        path = self._id_record(dag_id)
        with self._locked(f"dag-id-{_digest(dag_id)[:2]}"):
            current = set(self._strings(self._read_record(path), "files"))
            records = self._file_records_of(current | set(owners))
            truth = {k for k, ids in records.items() if dag_id in ids}
            if truth == current and (truth or not os.path.lexists(path)):
                return
            if truth:
                self._write_record(path, {"dag_id": dag_id, "files": sorted(truth)})
            else:
                self._unlink(path)

    def _file_records_of(self, keys: Iterable[str]) -> dict[str, list[str]]:
        return {k: self._strings(self._read_record(self._file_record(k)), "dag_ids") for k in keys}

    def _duplicates(self, dag_ids: Iterable[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for dag_id in sorted(set(dag_ids)):
            files = self._strings(self._read_record(self._id_record(dag_id)), "files")
            if len(files) > 1:
                found[dag_id] = sorted(files)
        return found
