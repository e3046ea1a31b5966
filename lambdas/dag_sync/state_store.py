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
    the same key are serialised. ``locks/roll.lock`` and ``locks/dag-ids.lock`` likewise.

``roll-pending/<ms>-<uuid>.json``  one token per change to requirements.txt, plugins.zip or
    startup.sh, written just before the change becomes visible and deleted once the
    services were rolled, so a failed ecs:UpdateService is retried by the next invocation.

``dag_ids.json``  ``{"format": 1, "files": {"dags/a.py": ["a"]}}``: literal dag_ids per
    file, to report duplicates across files.

Every file is replaced atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence

from dag_sync.core import TEMP_PREFIX, Entry
from dag_sync.efs_writer import STATE_DIRNAME, atomic_write_bytes

logger = logging.getLogger("dag_sync")

FORMAT = 1
TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600
_SHARD = re.compile(r"[0-9a-f]{2}")


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
    """``core.StateStore`` on the EFS mount."""

    def __init__(self, root: str, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self.base = os.path.join(os.path.abspath(root), STATE_DIRNAME)
        self.state_dir = os.path.join(self.base, "state")
        self.lock_dir = os.path.join(self.base, "locks")
        self.roll_dir = os.path.join(self.base, "roll-pending")
        self.index_path = os.path.join(self.base, "dag_ids.json")
        for folder in (self.state_dir, self.lock_dir, self.roll_dir):
            os.makedirs(folder, mode=0o755, exist_ok=True)

    # ---- locks

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        fd = os.open(os.path.join(self.lock_dir, f"{name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
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
            with open(path, "rb") as handle:
                data = json.loads(handle.read())
            entries = data["entries"]
            return {str(k): Entry.from_json(v) for k, v in entries.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
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

    # ---- dag_id index

    def _load_index(self) -> dict[str, list[str]]:
        try:
            with open(self.index_path, "rb") as handle:
                files = json.loads(handle.read())["files"]
            return {str(k): [str(i) for i in v] for k, v in files.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.error("dag_id index is unreadable (%s); rebuilding it", exc)
            return {}

    def dag_id_files(self) -> set[str]:
        return set(self._load_index())

    def update_dag_ids(
        self, changes: Mapping[str, Sequence[str] | None], keep_only: set[str] | None
    ) -> dict[str, list[str]]:
        with self._locked("dag-ids"):
            index = self._load_index()
            before = dict(index)
            for key, ids in changes.items():
                if ids is None:
                    index.pop(key, None)
                else:
                    index[key] = list(ids)
            if keep_only is not None:
                index = {k: v for k, v in index.items() if k in keep_only}
            if index != before:
                payload = json.dumps({"format": FORMAT, "files": index}, sort_keys=True)
                atomic_write_bytes(self.index_path, payload.encode("utf-8", "surrogatepass"))
        owners: dict[str, list[str]] = {}
        for key, ids in index.items():
            for dag_id in ids:
                owners.setdefault(dag_id, []).append(key)
        return {d: sorted(files) for d, files in sorted(owners.items()) if len(files) > 1}
