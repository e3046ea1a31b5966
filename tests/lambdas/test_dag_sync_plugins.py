"""plugins.zip end to end: extraction, atomic swap, hostile archives keep the old plugins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lambdas.dag_sync_fixtures import (
    SyncEnv,
    make_zip,
    mocked_aws,
    s3_event,
    zip_with_lying_size,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[SyncEnv]:
    with mocked_aws():
        yield SyncEnv(tmp_path)


def versions(env: SyncEnv) -> list[str]:
    return sorted(os.listdir(env.mount / ".openmwaa" / "plugins"))


def install(env: SyncEnv, files: dict[str, bytes]) -> dict[str, object]:
    return env.run(s3_event(env.put("plugins.zip", make_zip(files))))


def test_plugins_zip_is_extracted_behind_a_relative_symlink(env: SyncEnv) -> None:
    summary = install(env, {"my_plugin/__init__.py": b"NAME = 'v1'\n"})
    link = env.path("plugins")
    assert link.is_symlink()
    assert not os.path.isabs(os.readlink(link))
    assert (link / "my_plugin" / "__init__.py").read_bytes() == b"NAME = 'v1'\n"
    assert summary["written"] == ["plugins.zip"]
    assert summary["rolled"] == ["scheduler", "worker"]


def test_plugins_update_swaps_link_and_keeps_previous_version(env: SyncEnv) -> None:
    install(env, {"p.py": b"v1"})
    first = os.readlink(env.path("plugins"))
    install(env, {"p.py": b"v2"})
    assert (env.path("plugins") / "p.py").read_bytes() == b"v2"
    assert os.readlink(env.path("plugins")) != first
    assert len(versions(env)) == 2  # the current one and the one running tasks may still use


def test_plugins_old_versions_are_deleted(env: SyncEnv) -> None:
    for n in range(4):
        install(env, {"p.py": f"v{n}".encode()})
    assert len(versions(env)) == 2


def test_plugins_delete_removes_the_plugins(env: SyncEnv) -> None:
    install(env, {"p.py": b"v1"})
    summary = env.run(s3_event(env.delete("plugins.zip")))
    assert list(env.path("plugins").iterdir()) == []
    assert summary["removed"] == ["plugins.zip"]
    assert len(env.ecs.calls) == 4


def test_plugins_install_replaces_a_plain_folder(env: SyncEnv) -> None:
    env.path("plugins").mkdir()
    (env.path("plugins") / "hand_made.py").write_bytes(b"x")
    install(env, {"p.py": b"v1"})
    assert env.path("plugins").is_symlink()
    assert sorted(p.name for p in env.path("plugins").iterdir()) == ["p.py"]


def test_plugins_reconcile_restores_a_broken_link(env: SyncEnv) -> None:
    install(env, {"p.py": b"v1"})
    env.path("plugins").unlink()
    summary = env.reconcile()
    assert (env.path("plugins") / "p.py").read_bytes() == b"v1"
    assert summary["written"] == ["plugins.zip"]


HOSTILE = {
    "absolute path": (make_zip({"ok.py": b"", "/tmp/evil.py": b"x"}), "'/tmp/evil.py'"),
    "dotdot escape": (make_zip({"ok.py": b"", "../../outside/evil.py": b"x"}), "'..'"),
    "symlink entry": (make_zip({"ok.py": b""}, symlinks={"lnk": "/etc"}), "symbolic link"),
    "too many entries": (make_zip({f"f{i}.py": b"" for i in range(101)}), "MAX_PLUGIN_ENTRIES"),
    "bomb by declared size": (make_zip({"big.bin": b"\0" * 2_000_000}), "MAX_PLUGIN_BYTES"),
    "bomb by actual size": (zip_with_lying_size("big.bin", 2_000_000, 100), "'big.bin'"),
    "entry name over 255 bytes": (make_zip({"p/" + "é" * 128 + ".py": b""}), "255 bytes"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_fails_when_plugins_zip_is_hostile_and_keeps_previous_plugins(
    env: SyncEnv, case: str
) -> None:
    install(env, {"good.py": b"previous"})
    before = os.readlink(env.path("plugins"))
    calls = len(env.ecs.calls)
    data, needle = HOSTILE[case]
    summary = env.run(s3_event(env.put("plugins.zip", data)))
    assert needle in summary["errors"][0]["error"]
    assert os.readlink(env.path("plugins")) == before
    assert (env.path("plugins") / "good.py").read_bytes() == b"previous"
    assert len(versions(env)) == 1  # nothing half-extracted left behind
    assert env.temp_files() == []
    assert list(env.outside.iterdir()) == []
    assert len(env.ecs.calls) == calls  # no roll for a refused archive


def test_fails_when_plugins_zip_is_hostile_and_is_reported_again_by_reconcile(
    env: SyncEnv,
) -> None:
    install(env, {"good.py": b"previous"})
    env.run(s3_event(env.put("plugins.zip", make_zip({"../x.py": b""}))))
    summary = env.reconcile()
    assert "'../x.py'" in summary["errors"][0]["error"]
    assert (env.path("plugins") / "good.py").read_bytes() == b"previous"
