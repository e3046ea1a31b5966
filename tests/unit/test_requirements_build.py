"""The requirements build in the runtime: the effective requirements (the user's and the AWS
CLI), their key, the container's choice (use the prebuilt folder, or install at start while it
is missing or failed) and the build's atomic swap.

A fake ``python`` stands in for pip: it records its arguments and, for ``--prefix``, writes a
package into that prefix (and ``bin/aws`` when awscli is among the requirements), so the real
subprocess handling and file moves run. ``FAKE_PIP_FAIL_ON`` (a regular expression) makes it
fail when a requirement matches.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dag_sync import requirements_build as lambda_side
from openmwaa.runtime import bootstrap
from openmwaa.runtime import requirements as runtime_requirements
from openmwaa.runtime.requirements import BUILD_MARKER, BUILDS_DIR
from openmwaa.runtime.startup_steps import Settings

FAKE_PIP = """#!/bin/bash
echo "python $*" >> "$FAKE_CALLS"
prefix=""
reqs=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="$2"; shift ;;
    -r) reqs+=$'\\n'"$(cat "$2")"; shift ;;
    -c|-m) shift ;;
    install|-*) ;;
    *) reqs+=$'\\n'"$1" ;;
  esac
  shift
done
if [[ -n "${FAKE_PIP_FAIL_ON:-}" ]] && grep -Eq "^(${FAKE_PIP_FAIL_ON})" <<< "$reqs"; then
  exit 1
fi
if [[ -n "$prefix" ]]; then
  mkdir -p "$prefix/lib/python3.12/site-packages/fakepkg" "$prefix/bin"
  echo "VALUE = 42" > "$prefix/lib/python3.12/site-packages/fakepkg/__init__.py"
  if grep -Eqi "^awscli" <<< "$reqs"; then
    printf '#!/bin/sh\\necho aws-cli/1.46.3 fake\\n' > "$prefix/bin/aws"
    chmod +x "$prefix/bin/aws"
  fi
fi
exit "${FAKE_PIP_EXIT:-0}"
"""

KEY_ENV = {"OPENMWAA_AIRFLOW_VERSION": "3.3.2", "OPENMWAA_PYTHON_VERSION": "3.12"}


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Any]:
    python = tmp_path / "python"
    python.write_text(FAKE_PIP)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    sync = tmp_path / "sync"
    sync.mkdir()
    calls = tmp_path / "calls.txt"
    calls.touch()
    env = {
        **KEY_ENV,
        "OPENMWAA_CONSTRAINTS_URL": "none",
        "PATH": "/usr/bin:/bin",
        "FAKE_CALLS": str(calls),
    }
    settings = Settings("worker", "3.3.2", 3, "3.12", str(sync), "8080")
    return {"python": str(python), "sync": sync, "calls": calls, "env": env, "settings": settings}


def pip_calls(box: dict[str, Any]) -> list[str]:
    return box["calls"].read_text().splitlines()


def key_of(requirements: bytes | None, env: dict[str, str]) -> str:
    """The build key of a requirements.txt (None: no file), as the runtime computes it."""
    effective = runtime_requirements.effective_requirements(requirements)
    return runtime_requirements.requirements_key(effective, env)


def write_requirements(box: dict[str, Any], text: str = "fakepkg==1.0\n") -> bytes:
    (box["sync"] / "requirements.txt").write_text(text)
    return text.encode()


def build(box: dict[str, Any], **env: str) -> int:
    settings = Settings("build-requirements", "3.3.2", 3, "3.12", str(box["sync"]), "8080")
    return runtime_requirements.build_requirements({**box["env"], **env}, settings, box["python"])


def install(box: dict[str, Any]) -> dict[str, str]:
    path = str(box["sync"] / "requirements.txt")
    return runtime_requirements.install_requirements(
        path, box["env"], box["settings"], box["python"]
    )


def builds_dir(box: dict[str, Any]) -> Path:
    return Path(box["sync"]) / BUILDS_DIR


# --- the key ------------------------------------------------------------------------------


def test_requirements_key_is_stable_for_the_same_inputs() -> None:
    reordered = dict(reversed(list({**KEY_ENV, "PATH": "/bin"}.items())))

    assert runtime_requirements.requirements_key(
        b"a==1\n", KEY_ENV
    ) == runtime_requirements.requirements_key(b"a==1\n", reordered)


@pytest.mark.parametrize(
    ("requirements", "change"),
    [
        (b"a==2\n", {}),
        (b"a==1\n", {"OPENMWAA_AIRFLOW_VERSION": "3.3.3"}),
        (b"a==1\n", {"OPENMWAA_PYTHON_VERSION": "3.11"}),
        (b"a==1\n", {"OPENMWAA_CONSTRAINTS_URL": "https://example.com/c.txt"}),
    ],
)
def test_requirements_key_changes_with_each_input(
    requirements: bytes, change: dict[str, str]
) -> None:
    base = runtime_requirements.requirements_key(b"a==1\n", KEY_ENV)

    assert runtime_requirements.requirements_key(requirements, {**KEY_ENV, **change}) != base


def test_requirements_key_ignores_variables_outside_the_key() -> None:
    base = runtime_requirements.requirements_key(b"a==1\n", KEY_ENV)

    assert runtime_requirements.requirements_key(b"a==1\n", {**KEY_ENV, "PATH": "/x"}) == base


@pytest.mark.parametrize(
    "env",
    [
        KEY_ENV,
        {},
        {**KEY_ENV, "OPENMWAA_CONSTRAINTS_URL": "none"},
        {"OPENMWAA_AIRFLOW_VERSION": "2.10.5", "OPENMWAA_PYTHON_VERSION": "3.11"},
    ],
)
def test_requirements_key_is_the_same_in_the_dag_sync_function(env: dict[str, str]) -> None:
    text = b"pandas==2.2.3\n# comment\nrequests\n"

    assert runtime_requirements.requirements_key(text, env) == lambda_side.requirements_key(
        text, env
    )
    assert runtime_requirements.KEY_VARIABLES == lambda_side.KEY_VARIABLES
    assert (runtime_requirements.BUILDS_DIR, runtime_requirements.BUILD_MARKER) == (
        lambda_side.BUILDS_DIR,
        lambda_side.BUILD_MARKER,
    )


# --- the effective requirements -------------------------------------------------------------

WITH_CLI = [
    (None, b"awscli\n"),
    (b"", b"awscli\n"),
    (b"# nothing yet\n\n", b"awscli\n"),
    (b"pandas==2.2.3\n", b"pandas==2.2.3\nawscli\n"),
    (b"pandas==2.2.3", b"pandas==2.2.3\nawscli\n"),
    # names that are not the awscli project: another project, or no requirement line
    (b"aws-cli\n", b"aws-cli\nawscli\n"),
    (b"aws_cli==1.0\n", b"aws_cli==1.0\nawscli\n"),
    (b"awscli-plugin-endpoint\n", b"awscli-plugin-endpoint\nawscli\n"),
    (b"# awscli\npandas\n", b"# awscli\npandas\nawscli\n"),
    (b"pandas  # and awscli\n", b"pandas  # and awscli\nawscli\n"),
    (b"-r awscli.txt\n", b"-r awscli.txt\nawscli\n"),
    (b"--index-url https://example.com/awscli\npandas\n", None),
]
USER_NAMES_IT = [
    b"awscli\n",
    b"AWSCLI\n",
    b"awscli==1.2.3",
    b"pandas\n  AwsCli[extra] >=1.30 ; python_version >= '3.9'  # mine\n",
    b"awscli @ https://example.com/awscli-1.46.3-py3-none-any.whl\n",
    b"-c constraints.txt\nawscli<2\n",
    b"awscli==1.46.3 \\\n    --hash=sha256:0123\n",  # a continued line is one line to pip
]


@pytest.mark.parametrize(("requirements", "effective"), WITH_CLI)
def test_effective_requirements_add_the_aws_cli(
    requirements: bytes | None, effective: bytes | None
) -> None:
    expected = effective if effective is not None else (requirements or b"") + b"awscli\n"

    assert runtime_requirements.effective_requirements(requirements) == expected
    assert runtime_requirements.adds_aws_cli(requirements)


@pytest.mark.parametrize("requirements", USER_NAMES_IT)
def test_effective_requirements_keep_the_users_awscli(requirements: bytes) -> None:
    expected = requirements if requirements.endswith(b"\n") else requirements + b"\n"

    assert runtime_requirements.effective_requirements(requirements) == expected
    assert not runtime_requirements.adds_aws_cli(requirements)


def test_no_file_and_an_empty_file_have_one_key_other_files_another() -> None:
    keys = {key_of(text, KEY_ENV) for text in (None, b"", b"# none\n", b"awscli\n")}
    assert len(keys) == 1
    assert key_of(b"a==1\n", KEY_ENV) not in keys
    assert key_of(b"a==1\n", KEY_ENV) != key_of(b"a==1\nawscli==1.40.0\n", KEY_ENV)


@pytest.mark.parametrize(
    "requirements", [text for text, _ in WITH_CLI] + USER_NAMES_IT + [b"\xff\xfe awscli\n"]
)
def test_effective_requirements_are_the_same_in_the_dag_sync_function(
    requirements: bytes | None,
) -> None:
    runtime_side = runtime_requirements.effective_requirements(requirements)

    assert runtime_side == lambda_side.effective_requirements(requirements)
    text = (requirements or b"").decode("utf-8", "replace")
    assert runtime_requirements.project_names(text) == lambda_side.project_names(text)
    assert runtime_requirements.AWS_CLI == lambda_side.AWS_CLI
    for env in (KEY_ENV, {}):
        assert key_of(requirements, env) == lambda_side.requirements_key(
            lambda_side.effective_requirements(requirements), env
        )


# --- the container's choice -----------------------------------------------------------------


def test_container_uses_the_prebuilt_folder_without_pip(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    write_requirements(box)
    assert build(box) == 0
    box["calls"].write_text("")
    caplog.set_level(logging.INFO)

    env = install(box)

    folder = builds_dir(box) / key_of(b"fakepkg==1.0\n", box["env"])
    assert pip_calls(box) == []
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(folder / "lib/python3.12/site-packages")
    assert env["PATH"].split(os.pathsep) == [str(folder / "bin"), "/usr/bin", "/bin"]
    assert "using the prebuilt folder" in caplog.text
    assert f"the AWS CLI is on PATH: {folder}/bin/aws" in caplog.text


def test_container_keeps_the_users_pythonpath_after_the_build(box: dict[str, Any]) -> None:
    write_requirements(box)
    build(box)
    box["env"]["PYTHONPATH"] = "/mine"

    env = install(box)

    assert env["PYTHONPATH"].split(os.pathsep)[1:] == ["/mine"]


def test_container_installs_at_start_while_the_build_is_missing(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    write_requirements(box)

    env = install(box)

    [call] = pip_calls(box)
    args = call.split()
    assert args[args.index("-r") + 1 :] == [str(box["sync"] / "requirements.txt"), "awscli"]
    assert "--prefix" not in args
    assert "PYTHONPATH" not in env
    assert "not built yet" in caplog.text


def test_container_installs_at_start_when_the_build_failed(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    write_requirements(box)
    assert build(box, FAKE_PIP_EXIT="1") == 1
    box["calls"].write_text("")

    install(box)

    assert len(pip_calls(box)) == 1
    assert "its build failed: pip exit 1" in caplog.text


def test_container_ignores_a_build_of_another_python(box: dict[str, Any]) -> None:
    write_requirements(box)
    build(box)
    box["calls"].write_text("")
    box["settings"] = Settings("worker", "3.3.2", 3, "3.11", str(box["sync"]), "8080")

    env = install(box)

    assert len(pip_calls(box)) == 1
    assert "PYTHONPATH" not in env


def test_container_ignores_the_build_of_older_requirements(box: dict[str, Any]) -> None:
    write_requirements(box, "fakepkg==1.0\n")
    build(box)
    write_requirements(box, "fakepkg==2.0\n")
    box["calls"].write_text("")

    env = install(box)

    assert len(pip_calls(box)) == 1
    assert "PYTHONPATH" not in env


@pytest.mark.parametrize("text", [None, "", "# nothing\n\n"])
def test_container_without_requirements_installs_the_aws_cli_at_start(
    box: dict[str, Any], text: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    if text is not None:
        write_requirements(box, text)
    caplog.set_level(logging.INFO)

    assert install(box) == box["env"]

    [call] = pip_calls(box)
    assert call.split()[-1] == "awscli" and "-r" not in call.split()
    assert "installing the AWS CLI (awscli)" in caplog.text


def test_container_without_requirements_uses_the_aws_cli_build(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert build(box) == 0
    box["calls"].write_text("")
    caplog.set_level(logging.INFO)

    env = install(box)

    folder = builds_dir(box) / key_of(None, box["env"])
    assert pip_calls(box) == []
    aws = shutil.which("aws", path=env["PATH"])
    assert aws == str(folder / "bin" / "aws")
    run = subprocess.run([aws], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("aws-cli/1.")
    assert f"the AWS CLI is on PATH: {aws}" in caplog.text


def test_container_with_the_users_awscli_pin_adds_no_second_one(box: dict[str, Any]) -> None:
    write_requirements(box, "fakepkg==1.0\nawscli==1.40.0\n")

    install(box)

    [call] = pip_calls(box)
    assert call.split()[-2:] == ["-r", str(box["sync"] / "requirements.txt")]


def test_container_installs_the_requirements_without_the_aws_cli_it_cannot_install(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    write_requirements(box)
    box["env"]["FAKE_PIP_FAIL_ON"] = "awscli"
    caplog.set_level(logging.INFO)

    env = install(box)

    first, second = pip_calls(box)
    assert first.split()[-1] == "awscli"
    assert second.split()[-2:] == ["-r", str(box["sync"] / "requirements.txt")]
    assert env == box["env"]
    assert "the AWS CLI (awscli, added by openmwaa) could not be installed (pip exit 1)" in (
        caplog.text
    )
    assert "requirements installed, without the AWS CLI" in caplog.text
    assert "the AWS CLI (aws) is not on PATH: the AWS CLI (awscli" in caplog.text


def test_container_without_requirements_survives_an_aws_cli_failure(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    box["env"]["FAKE_PIP_FAIL_ON"] = "awscli"

    assert install(box) == box["env"]

    assert len(pip_calls(box)) == 1
    assert "the AWS CLI (awscli, added by openmwaa) could not be installed" in caplog.text


def test_container_whose_requirements_fail_reports_them_not_the_aws_cli(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    write_requirements(box)
    box["env"]["FAKE_PIP_FAIL_ON"] = "fakepkg"

    install(box)

    assert len(pip_calls(box)) == 2  # with the AWS CLI, then without it
    assert "requirements install failed (exit 1)" in caplog.text


def test_container_whose_install_is_killed_does_not_try_again(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(
        runtime_requirements, "pip_install", lambda args, *a, **k: seen.append(list(args))
    )
    write_requirements(box)

    install(box)

    assert len(seen) == 1
    assert "requirements install killed" in caplog.text


# --- the build ------------------------------------------------------------------------------


def test_build_installs_into_the_keys_folder_with_a_complete_marker(box: dict[str, Any]) -> None:
    data = write_requirements(box)

    assert build(box) == 0

    key = key_of(data, box["env"])
    folder = builds_dir(box) / key
    marker = json.loads((folder / BUILD_MARKER).read_text())
    assert (marker["key"], marker["python"], marker["airflow"]) == (key, "3.12", "3.3.2")
    assert "aws_cli_error" not in marker
    assert (folder / "lib/python3.12/site-packages/fakepkg/__init__.py").is_file()
    assert (folder / "bin/aws").is_file()
    assert (folder / "requirements.txt").read_bytes() == data + b"awscli\n"
    assert sorted(p.name for p in builds_dir(box).iterdir()) == [key]
    [call] = pip_calls(box)
    assert f"--prefix {builds_dir(box)}/.tmp-{key}-" in call


def test_build_turns_pip_user_off_for_the_prefix_install(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    monkeypatch.setattr(
        runtime_requirements, "pip_install", lambda args, env, *a, **k: seen.append(dict(env)) or 1
    )
    write_requirements(box)

    build(box, PIP_USER="true")

    assert seen[0]["PIP_USER"] == "false"


def test_build_of_a_complete_key_runs_no_pip(box: dict[str, Any]) -> None:
    write_requirements(box)
    build(box)
    box["calls"].write_text("")

    assert build(box) == 0
    assert pip_calls(box) == []


def test_failed_build_leaves_the_previous_folder_and_reports(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    old = write_requirements(box, "fakepkg==1.0\n")
    build(box)
    old_folder = builds_dir(box) / key_of(old, box["env"])
    before = sorted(p.relative_to(old_folder) for p in old_folder.rglob("*"))
    new = write_requirements(box, "fakepkg==2.0\n")

    assert build(box, FAKE_PIP_EXIT="1") == 1

    new_key = key_of(new, box["env"])
    assert sorted(p.relative_to(old_folder) for p in old_folder.rglob("*")) == before
    assert not (builds_dir(box) / new_key).exists()
    assert not [p for p in builds_dir(box).iterdir() if p.name.startswith(".tmp-")]
    failed = json.loads((builds_dir(box) / f"{new_key}.failed").read_text())
    assert failed["error"] == "pip exit 1"
    assert f"requirements build {new_key} failed (pip exit 1)" in caplog.text


def test_successful_build_clears_an_earlier_failure(box: dict[str, Any]) -> None:
    data = write_requirements(box)
    build(box, FAKE_PIP_EXIT="1")

    assert build(box) == 0

    key = key_of(data, box["env"])
    assert not (builds_dir(box) / f"{key}.failed").exists()
    assert (builds_dir(box) / key / BUILD_MARKER).is_file()


def test_build_losing_the_race_keeps_the_winners_folder(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_requirements(box)
    key = key_of(data, box["env"])
    real_pip = runtime_requirements.pip_install

    def pip_then_another_build_wins(*args: Any, **kwargs: Any) -> int | None:
        code = real_pip(*args, **kwargs)
        winner = builds_dir(box) / key
        winner.mkdir()
        marker = {"key": key, "python": "3.12", "airflow": "3.3.2"}
        (winner / BUILD_MARKER).write_text(json.dumps(marker))
        return code

    monkeypatch.setattr(runtime_requirements, "pip_install", pip_then_another_build_wins)

    assert build(box) == 0
    assert sorted(p.name for p in builds_dir(box).iterdir()) == [key]
    assert not (builds_dir(box) / key / "lib").exists()  # the winner's folder, untouched


@pytest.mark.parametrize("text", [None, "# nothing\n"])
def test_build_without_requirements_builds_the_aws_cli(
    box: dict[str, Any], text: str | None
) -> None:
    if text is not None:
        write_requirements(box, text)

    assert build(box) == 0

    folder = builds_dir(box) / key_of(None, box["env"])
    assert (folder / "bin/aws").is_file()
    assert (folder / "requirements.txt").read_bytes() == b"awscli\n"
    [call] = pip_calls(box)
    assert call.split()[-2] == "-r" and call.split()[-1].endswith("/requirements.txt")


def test_build_without_the_aws_cli_it_cannot_install_is_complete_and_says_why(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    assert build(box, FAKE_PIP_FAIL_ON="awscli") == 0

    key = key_of(data, box["env"])
    folder = builds_dir(box) / key
    marker = json.loads((folder / BUILD_MARKER).read_text())
    assert marker["aws_cli_error"].endswith("could not be installed (pip exit 1)")
    assert (folder / "lib/python3.12/site-packages/fakepkg/__init__.py").is_file()
    assert not (folder / "bin/aws").exists()
    assert (folder / "requirements.txt").read_bytes() == data
    assert not (builds_dir(box) / f"{key}.failed").exists()
    assert len(pip_calls(box)) == 2
    assert f"requirements build {key} is complete WITHOUT the AWS CLI" in caplog.text
    box["calls"].write_text("")
    caplog.clear()

    env = install(box)  # a container uses it, and says why aws is missing

    assert pip_calls(box) == []
    assert env["PATH"].split(os.pathsep)[0] == str(folder / "bin")
    assert "the AWS CLI (aws) is not on PATH: the AWS CLI (awscli" in caplog.text


def test_build_of_the_aws_cli_alone_that_fails_completes_empty(box: dict[str, Any]) -> None:
    assert build(box, FAKE_PIP_FAIL_ON="awscli") == 0

    key = key_of(None, box["env"])
    assert "aws_cli_error" in json.loads((builds_dir(box) / key / BUILD_MARKER).read_text())
    assert not (builds_dir(box) / f"{key}.failed").exists()
    assert len(pip_calls(box)) == 1  # nothing else to install


def test_build_whose_requirements_fail_is_failed_as_before(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    assert build(box, FAKE_PIP_FAIL_ON="fakepkg") == 1

    key = key_of(data, box["env"])
    assert not (builds_dir(box) / key).exists()
    failed = json.loads((builds_dir(box) / f"{key}.failed").read_text())
    assert failed["error"] == "pip exit 1"
    assert len(pip_calls(box)) == 2  # with the AWS CLI, then requirements.txt alone


def test_build_with_the_users_awscli_pin_installs_it_once(box: dict[str, Any]) -> None:
    data = write_requirements(box, "fakepkg==1.0\nAWSCLI==1.40.0\n")

    assert build(box, FAKE_PIP_FAIL_ON="AWSCLI") == 1  # the user's pin fails: no retry

    assert len(pip_calls(box)) == 1
    key = key_of(data, box["env"])
    assert key == runtime_requirements.requirements_key(data, box["env"])


def test_build_prunes_old_builds_but_keeps_the_newest(box: dict[str, Any]) -> None:
    keys = []
    for version in range(1, 6):
        data = write_requirements(box, f"fakepkg=={version}.0\n")
        build(box)
        keys.append(key_of(data, box["env"]))
        os.utime(builds_dir(box) / keys[-1] / BUILD_MARKER, (version, version))

    folders = sorted(p.name for p in builds_dir(box).iterdir() if p.is_dir())
    assert folders == sorted(keys[-runtime_requirements.KEEP_BUILDS :])


def test_prune_removes_stale_temporary_folders_only(box: dict[str, Any]) -> None:
    builds = builds_dir(box)
    stale, fresh = builds / ".tmp-aaa-1", builds / ".tmp-bbb-2"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
    os.utime(stale, (0, 0))

    runtime_requirements.prune_builds(
        str(builds), "current", now=3 * runtime_requirements.BUILD_TIMEOUT
    )

    assert not stale.exists() and fresh.exists()


def test_prune_never_follows_a_symlink(box: dict[str, Any], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / BUILD_MARKER).write_text("{}")
    builds = builds_dir(box)
    builds.mkdir(parents=True)
    for name in ("a", "b", "c", "d"):
        os.symlink(outside / "keep", builds / name)

    runtime_requirements.prune_builds(str(builds), "current", now=1e9)

    assert (outside / "keep" / BUILD_MARKER).is_file()


def test_start_runs_the_build_role_without_airflow_secrets(box: dict[str, Any]) -> None:
    write_requirements(box)
    env = {
        **box["env"],
        "OPENMWAA_COMPONENT": "build-requirements",
        "OPENMWAA_SYNC_ROOT": str(box["sync"]),
    }

    code = bootstrap.start(env, python=box["python"], installed_airflow="3.3.2")

    assert code == 0
    assert len(list(builds_dir(box).glob(f"*/{BUILD_MARKER}"))) == 1
