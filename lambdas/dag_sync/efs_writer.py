"""The EFS side: atomic file writes and removals, and the plugins folder swap.

Layout under the mount (``EFS_MOUNT_PATH``)::

    dags/...                      files from s3://bucket/dags/..., same hierarchy
    requirements.txt, startup.sh  from the bucket root
    plugins -> .openmwaa/plugins/<version>   relative symlink, swapped atomically
    .openmwaa/plugins/<version>/  extracted plugins.zip (current + previous kept)
    .openmwaa/tmp/                downloads in progress
    .openmwaa/state/, locks/, roll-pending/, dag-ids/   see state_store.py

Every write goes to a temporary file named ``.openmwaa-tmp.*`` in the destination folder,
is fsynced, then renamed over the destination with ``os.replace`` (atomic on POSIX and on
EFS/NFSv4). On any error, the temporary file is removed before the error propagates, so
readers only ever see the old or the new complete file. Nothing is written outside the
mount: paths are checked structurally and the real path of every folder we write into must
stay inside the mount (so a symlink planted on EFS cannot redirect a write). The private
``.openmwaa/`` folders are resolved without following symlinks (:func:`private_dir`): a
symlink planted at ``.openmwaa`` or inside it is removed and replaced by a real folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable

import openmwaa_contracts as contracts

from dag_sync.keys import TEMP_PREFIX
from dag_sync.model import RefusedContentError
from dag_sync.plugins_archive import ArchiveLimits, extract_zip

STATE_DIRNAME = ".openmwaa"
PLUGINS_LINK = contracts.PLUGINS_DIR
EMPTY_PLUGINS_PREFIX = "empty-"

logger = logging.getLogger("dag_sync")


def private_dir(root: str, *parts: str) -> str:
    """``<root>/.openmwaa/<parts...>`` as a real folder, created as needed, resolved one
    component at a time without following symlinks.

    A symlink found on the way (planted at ``.openmwaa`` or inside it) is removed, never
    followed, and a real folder is made in its place; anything else that is not a folder
    raises ``RefusedContentError``. So the private folders cannot redirect a write outside
    the mount.
    """
    path = os.path.abspath(root)
    for part in (STATE_DIRNAME, *parts):
        if part in ("", ".", "..") or "/" in part:
            raise ValueError(f"invalid private folder name {part!r}")
        path = os.path.join(path, part)
        for _ in range(3):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path, 0o755)
                continue
            if stat.S_ISDIR(st.st_mode):
                break
            if stat.S_ISLNK(st.st_mode):
                logger.warning("removed the symlink planted at %s (never followed)", path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            raise RefusedContentError(f"{path} is not a folder; the sync keeps its state there")
        else:
            raise RefusedContentError(f"{path} keeps changing under the sync")
    return path


def atomic_write_bytes(dest: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``dest`` atomically (temp file in the same folder, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _utc_stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


class EfsTree:
    """``ports.FileTree`` on a mounted folder."""

    def __init__(
        self, root: str, limits: ArchiveLimits, now: Callable[[], float] = time.time
    ) -> None:
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(root)
        self.limits = limits
        self.now = now
        self.state_dir = private_dir(self.root)
        self.versions_dir = private_dir(self.root, "plugins")
        self.scratch_dir = private_dir(self.root, "tmp")
        self.plugins_link = os.path.join(self.root, PLUGINS_LINK)
        self.dags_dir = os.path.join(self.root, contracts.DAGS_PREFIX.rstrip("/"))

    # ---- paths

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if (
            not key
            or "\x00" in key
            or key.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise RefusedContentError(f"{key!r} is not a safe relative path")
        return os.path.join(self.root, *parts)

    def _inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def _ensure_dir(self, folder: str, key: str) -> None:
        try:
            os.makedirs(folder, mode=0o755, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise RefusedContentError(
                f"{key}: a file on EFS is in the way of its folder ({exc}); the bucket holds "
                "both a file and a folder with the same name"
            ) from exc
        if not self._inside(os.path.realpath(folder)):
            raise RefusedContentError(f"{key}: its folder resolves outside the mount (symlink)")

    def _mkstemp(self, folder: str, key: str) -> tuple[int, str]:
        for _ in range(3):
            try:
                return tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
            except FileNotFoundError:
                # A concurrent removal pruned the (empty) folder; create it again.
                self._ensure_dir(folder, key)
        return tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)

    # ---- files

    def write_file(
        self,
        path: str,
        chunks: Iterable[bytes],
        *,
        executable: bool = False,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        dest = self._path(path)
        folder = os.path.dirname(dest)
        self._ensure_dir(folder, path)
        fd, tmp = self._mkstemp(folder, path)
        written = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o755 if executable else 0o644)
            if before_commit is not None:
                before_commit()
            try:
                os.replace(tmp, dest)
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise RefusedContentError(
                    f"{path}: a folder with the same name exists on EFS ({exc})"
                ) from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return written

    def remove_file(self, path: str) -> bool:
        dest = self._path(path)
        folder = os.path.dirname(dest)
        if not os.path.isdir(folder) or not self._inside(os.path.realpath(folder)):
            return False
        try:
            os.unlink(dest)
        except FileNotFoundError:
            return False
        except (IsADirectoryError, PermissionError):
            # The key names a folder on EFS (other keys live below it): nothing to remove.
            # (unlink() of a folder raises PermissionError on some systems.)
            if os.path.isdir(dest) and not os.path.islink(dest):
                return False
            raise
        if dest.startswith(self.dags_dir + os.sep):
            self._prune_empty(folder)
        return True

    def _prune_empty(self, folder: str) -> None:
        while folder.startswith(self.dags_dir + os.sep):
            try:
                os.rmdir(folder)
            except OSError:
                return
            folder = os.path.dirname(folder)

    def file_size(self, path: str) -> int | None:
        try:
            st = os.lstat(self._path(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def read_file(self, path: str, limit: int) -> bytes | None:
        try:
            fd = os.open(self._path(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
        return data if len(data) <= limit else None

    def walk_dags(self) -> dict[str, int]:
        """Every file under dags/ as {key: size}; symlinks count as files of size -1 (so a
        reconcile replaces or removes them); our temporary files are left out."""
        found: dict[str, int] = {}
        self._scan(self.dags_dir, contracts.DAGS_PREFIX, found, None)
        return found

    def _scan(
        self,
        folder: str,
        prefix: str,
        found: dict[str, int],
        temps: list[tuple[str, float, bool]] | None,
    ) -> None:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                if temps is not None:
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat(follow_symlinks=False)
                        temps.append((entry.path, st.st_mtime, stat.S_ISDIR(st.st_mode)))
                continue
            if entry.is_symlink():
                found[prefix + entry.name] = -1
            elif entry.is_dir(follow_symlinks=False):
                self._scan(entry.path, f"{prefix}{entry.name}/", found, temps)
            elif entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    found[prefix + entry.name] = entry.stat(follow_symlinks=False).st_size

    def clean_stale_temp(self, older_than: float) -> list[str]:
        """Remove temporary files and folders left by invocations that died."""
        temps: list[tuple[str, float, bool]] = []
        self._scan(self.dags_dir, contracts.DAGS_PREFIX, {}, temps)
        private = [self.state_dir, self.scratch_dir, self.versions_dir]
        private += [os.path.join(self.state_dir, n) for n in ("state", "roll-pending")]
        for folder in (self.root, *private):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for entry in os.scandir(folder):
                    if entry.name.startswith(TEMP_PREFIX):
                        with contextlib.suppress(FileNotFoundError):
                            st = entry.stat(follow_symlinks=False)
                            temps.append((entry.path, st.st_mtime, stat.S_ISDIR(st.st_mode)))
        removed: list[str] = []
        for path, mtime, is_dir in temps:
            if mtime >= older_than:
                continue
            if is_dir:
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(os.path.relpath(path, self.root))
        return removed

    # ---- plugins

    def plugins_target(self) -> str | None:
        """Name of the version folder the plugins link points at, if it is one of ours."""
        try:
            target = os.readlink(self.plugins_link)
        except OSError:
            return None
        resolved = os.path.normpath(os.path.join(self.root, target))
        if os.path.dirname(resolved) != self.versions_dir:
            return None
        return os.path.basename(resolved)

    def plugins_current(self) -> str | None:
        name = self.plugins_target()
        if name is None or name.startswith(EMPTY_PLUGINS_PREFIX):
            return None
        try:
            st = os.lstat(os.path.join(self.versions_dir, name))
        except OSError:
            return None
        return name if stat.S_ISDIR(st.st_mode) else None

    def install_plugins(
        self,
        chunks: Iterable[bytes],
        *,
        label: str,
        before_commit: Callable[[], None] | None = None,
    ) -> str:
        private_dir(self.root, "tmp")
        private_dir(self.root, "plugins")
        fd, zip_tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".zip", dir=self.scratch_dir)
        staging = os.path.join(self.versions_dir, TEMP_PREFIX + uuid.uuid4().hex)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            extract_zip(zip_tmp, staging, self.limits)
            clean = re.sub(r"[^A-Za-z0-9]", "", label)[:16] or "zip"
            version = f"{_utc_stamp(self.now())}-{clean}-{uuid.uuid4().hex[:8]}"
            self._commit_version(staging, version, before_commit)
            return version
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(zip_tmp)

    def remove_plugins(self) -> bool:
        if self.plugins_current() is None:
            return False
        private_dir(self.root, "plugins")
        staging = os.path.join(self.versions_dir, TEMP_PREFIX + uuid.uuid4().hex)
        os.makedirs(staging, mode=0o755)
        version = f"{EMPTY_PLUGINS_PREFIX}{_utc_stamp(self.now())}-{uuid.uuid4().hex[:8]}"
        try:
            self._commit_version(staging, version, None)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True

    def _commit_version(
        self, staging: str, version: str, before_commit: Callable[[], None] | None
    ) -> None:
        final = os.path.join(self.versions_dir, version)
        os.rename(staging, final)
        try:
            if before_commit is not None:
                before_commit()
            previous = self._swap_link(final)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        self._gc_versions({version, previous or ""})

    def _swap_link(self, target: str) -> str | None:
        """Point ``plugins`` at ``target`` with one rename; return the previous version."""
        previous = self.plugins_target()
        tmp_link = os.path.join(self.root, f"{TEMP_PREFIX}plugins-{uuid.uuid4().hex}")
        os.symlink(os.path.relpath(target, self.root), tmp_link)
        try:
            if os.path.isdir(self.plugins_link) and not os.path.islink(self.plugins_link):
                # A plain folder (created by hand or by an older layout): keep it as the
                # previous version. This one-time move is the only non-atomic step.
                legacy = f"legacy-{_utc_stamp(self.now())}-{uuid.uuid4().hex[:8]}"
                os.rename(self.plugins_link, os.path.join(self.versions_dir, legacy))
                previous = legacy
            os.replace(tmp_link, self.plugins_link)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_link)
            raise
        return previous

    def _gc_versions(self, keep: set[str]) -> None:
        """Keep the current and the previous version (tasks already running may still
        import from it until the services have rolled); delete the others."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.versions_dir):
                if entry.name in keep or entry.name.startswith(TEMP_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
