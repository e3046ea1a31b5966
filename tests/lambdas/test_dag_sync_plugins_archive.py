"""plugins_archive: every hostile zip is refused before or while extracting."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from dag_sync.plugins_archive import ArchiveLimits, UnsafeArchiveError, entry_problem, extract_zip
from tests.lambdas.dag_sync_fixtures import make_zip, zip_with_lying_size

LIMITS = ArchiveLimits(max_entries=10, max_bytes=1000)


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "plugins.zip"
    path.write_bytes(data)
    return str(path)


def refused(tmp_path: Path, data: bytes, limits: ArchiveLimits = LIMITS) -> str:
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_zip(write(tmp_path, data), str(dest), limits)
    return str(caught.value)


def test_extract_zip_writes_files_and_folders(tmp_path: Path) -> None:
    data = make_zip({"my_plugin/__init__.py": b"", "my_plugin/hooks.py": b"x = 1\n"})
    stats = extract_zip(write(tmp_path, data), str(tmp_path / "out"), LIMITS)
    assert (tmp_path / "out/my_plugin/hooks.py").read_bytes() == b"x = 1\n"
    assert (stats.files, stats.bytes) == (2, 6)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/cron.d/evil", "absolute path"),
        ("C:/evil.py", "absolute path"),
        ("../evil.py", "'..'"),
        ("ok/../../evil.py", "'..'"),
        ("a\\..\\evil.py", "backslash"),
        ("", "empty name"),
    ],
)
def test_fails_when_entry_name_is_hostile(name: str, reason: str) -> None:
    problem = entry_problem(name)
    assert problem is not None and reason in problem


def test_fails_when_zip_has_absolute_path(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({"/tmp/evil.py": b"x"}))
    assert "'/tmp/evil.py'" in message and "absolute path" in message
    assert not (tmp_path / "out").exists()


def test_fails_when_zip_escapes_with_dotdot(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({"good.py": b"", "../evil.py": b"x"}))
    assert "'../evil.py'" in message
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "out").exists()


def test_fails_when_zip_has_symlink_entry(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({"a.py": b""}, symlinks={"link": "/etc/passwd"}))
    assert "'link'" in message and "symbolic link" in message


def test_fails_when_zip_has_too_many_entries(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({f"f{i}.py": b"" for i in range(11)}))
    assert "11 entries" in message and "MAX_PLUGIN_ENTRIES=10" in message


def test_fails_when_zip_declares_too_many_bytes(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({"a.bin": b"\0" * 600, "b.bin": b"\0" * 600}))
    assert "declares 1200 bytes" in message and "MAX_PLUGIN_BYTES=1000" in message


def test_fails_when_zip_headers_understate_actual_size(tmp_path: Path) -> None:
    # 1 MB of zeros claiming to be 100 bytes: passes the declared check, never extracted.
    message = refused(tmp_path, zip_with_lying_size("bomb.bin", actual=1_000_000, declared=100))
    assert "'bomb.bin'" in message
    out = tmp_path / "out" / "bomb.bin"
    assert not out.exists() or out.stat().st_size <= 100


class _InflatingZip(zipfile.ZipFile):
    """A ZipFile whose entries inflate past their declared size (as a decoder bug might)."""

    def open(self, name: Any, mode: str = "r", pwd: bytes | None = None, **kw: Any) -> Any:
        return io.BytesIO(b"\0" * 5000)


def test_fails_when_entry_inflates_beyond_declared_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_zip({"a.bin": b"\0" * 10})
    monkeypatch.setattr("dag_sync.plugins_archive.zipfile.ZipFile", _InflatingZip)
    message = refused(tmp_path, data)
    assert "inflates beyond its declared size of 10 bytes" in message


def test_fails_when_file_is_not_a_zip(tmp_path: Path) -> None:
    assert "not a valid zip archive" in refused(tmp_path, b"this is not a zip")


def test_fails_when_entries_conflict(tmp_path: Path) -> None:
    message = refused(tmp_path, make_zip({"a": b"file", "a/b.py": b""}))
    assert "conflicts with another entry" in message


def test_fails_when_an_entry_name_is_longer_than_255_bytes(tmp_path: Path) -> None:
    # 128 characters, 256 bytes in UTF-8: legal on macOS and Windows, ENAMETOOLONG here.
    name = "plugin/" + "é" * 128 + ".py"
    message = refused(tmp_path, make_zip({"ok.py": b"", name: b"x"}))
    assert "longer than 255 bytes" in message and repr(name) in message
    assert not (tmp_path / "out").exists()
