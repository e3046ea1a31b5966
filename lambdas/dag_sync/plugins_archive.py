"""Safe extraction of plugins.zip.

Everything is checked before the first byte is written (entry count, names, entry types,
declared sizes), and the actual bytes are counted again while inflating, so a header that
lies about sizes cannot get past the limits. Any refusal raises ``UnsafeArchiveError`` naming
the entry; the caller extracts into a fresh folder, so a refusal leaves nothing behind and
the previous plugins in place.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass

from dag_sync.keys import NAME_MAX_BYTES
from dag_sync.model import RefusedContentError

CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafeArchiveError(RefusedContentError):
    """plugins.zip was refused; the message names the entry and the rule."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_bytes: int


@dataclass(frozen=True)
class ExtractStats:
    files: int
    bytes: int


def entry_problem(name: str) -> str | None:
    """Why an entry name could escape or confuse the destination, or None."""
    if not name:
        return "the entry has an empty name"
    if "\x00" in name:
        return "the name contains a NUL character"
    if _CONTROL.search(name):
        return "the name contains a control character"
    if "\\" in name:
        return "the name contains a backslash"
    if name.startswith("/") or _DRIVE.match(name):
        return "the name is an absolute path"
    if ".." in name.split("/"):
        return "the name contains '..' and would escape the plugins folder"
    if any(len(part.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES for part in name.split("/")):
        # Legal on macOS and Windows (255 characters), but Linux counts bytes: ENAMETOOLONG.
        return f"a part of the name is longer than {NAME_MAX_BYTES} bytes (in UTF-8)"
    return None


def _entry_type_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "the entry is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "the entry is a special file (device, FIFO or socket)"
    if info.flag_bits & 0x1:
        return "the entry is encrypted"
    return None


def check_archive(zf: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """Every check that needs no extraction; returns the entries to extract."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeArchiveError(
            f"plugins.zip has {len(infos)} entries, more than MAX_PLUGIN_ENTRIES="
            f"{limits.max_entries}"
        )
    declared = 0
    for info in infos:
        problem = entry_problem(info.filename) or _entry_type_problem(info)
        if problem is not None:
            raise UnsafeArchiveError(f"plugins.zip entry {info.filename!r}: {problem}")
        declared += info.file_size
    if declared > limits.max_bytes:
        raise UnsafeArchiveError(
            f"plugins.zip declares {declared} bytes uncompressed, more than MAX_PLUGIN_BYTES="
            f"{limits.max_bytes}"
        )
    return infos


def extract_zip(zip_path: str, dest: str, limits: ArchiveLimits) -> ExtractStats:
    """Extract ``zip_path`` into the new, empty folder ``dest`` (created here)."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise UnsafeArchiveError(f"plugins.zip is not a valid zip archive: {exc}") from exc
    with zf:
        infos = check_archive(zf, limits)
        os.makedirs(dest, mode=0o755)
        root = os.path.normpath(dest)
        made: set[str] = {root}
        total = 0
        files = 0
        for info in infos:
            parts = [p for p in info.filename.split("/") if p not in ("", ".")]
            if not parts:
                continue
            target = os.path.normpath(os.path.join(root, *parts))
            if not target.startswith(root + os.sep):
                raise UnsafeArchiveError(f"plugins.zip entry {info.filename!r} escapes the folder")
            try:
                if info.is_dir():
                    _makedirs(target, made)
                    continue
                _makedirs(os.path.dirname(target), made)
                total = _extract_one(zf, info, target, total, limits)
            except UnsafeArchiveError:
                raise
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise UnsafeArchiveError(
                    f"plugins.zip entry {info.filename!r} cannot be extracted: {exc}"
                ) from exc
            except RuntimeError as exc:  # zipfile: encrypted or unsupported entries
                raise UnsafeArchiveError(
                    f"plugins.zip entry {info.filename!r} cannot be extracted: {exc}"
                ) from exc
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                raise UnsafeArchiveError(
                    f"plugins.zip entry {info.filename!r} conflicts with another entry: {exc}"
                ) from exc
            files += 1
    return ExtractStats(files=files, bytes=total)


def _makedirs(path: str, made: set[str]) -> None:
    if path in made:
        return
    os.makedirs(path, mode=0o755, exist_ok=True)
    made.add(path)


def _extract_one(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, total: int, limits: ArchiveLimits
) -> int:
    mode = info.external_attr >> 16
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o755 if mode & 0o111 else 0o644)
    written = 0
    with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            total += len(chunk)
            if written > info.file_size:
                raise UnsafeArchiveError(
                    f"plugins.zip entry {info.filename!r} inflates beyond its declared size "
                    f"of {info.file_size} bytes"
                )
            if total > limits.max_bytes:
                raise UnsafeArchiveError(
                    f"plugins.zip inflates to more than MAX_PLUGIN_BYTES={limits.max_bytes} "
                    f"bytes (at entry {info.filename!r})"
                )
            dst.write(chunk)
    return total
