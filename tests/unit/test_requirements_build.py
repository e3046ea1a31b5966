"""The requirements build in the runtime: the effective requirements (the user's and the AWS
CLI), their key, the container's choice (use the prebuilt folder, or install requirements.txt
at start while it is missing or failed, with the build's AWS CLI last on ``PATH`` either way)
and the build's atomic swap (requirements.txt with the constraints, then the AWS CLI on its
own, without them).

A fake ``python`` stands in for pip: it records its arguments and, for ``--prefix``, writes
the packages it was asked for into that prefix (``fakepkg``, or ``awscli`` with pip's
``bin/aws``), so the real subprocess handling and file moves run. ``FAKE_PIP_FAIL_ON`` (a
regular expression) makes it fail when a requirement matches, ``FAKE_PIP_FAIL_ONCE_ON`` the
first time only; a failing ``--prefix`` run leaves a ``partial`` file behind. Run as
``python -m awscli`` (by a build's ``aws`` wrapper) it prints a version line with its arguments
and the variables the wrapper sets, and records nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dag_sync import requirements_build as lambda_side
from openmwaa.runtime import bootstrap
from openmwaa.runtime import requirements as runtime_requirements
from openmwaa.runtime.requirements import BUILD_MARKER, BUILDS_DIR
from openmwaa.runtime.startup_steps import Settings

FAKE_PIP = """#!/bin/bash
if [[ "$1 $2" == "-m awscli" ]]; then
  shift 2
  echo "aws-cli/1.46.3 fake args=$* PYTHONPATH=${PYTHONPATH:-} NOUSERSITE=${PYTHONNOUSERSITE:-}"
  exit 0
fi
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
fail() {
  if [[ -n "$prefix" ]]; then mkdir -p "$prefix" && touch "$prefix/partial"; fi
  exit 1
}
if [[ -n "${FAKE_PIP_FAIL_ON:-}" ]] && grep -Eq "^(${FAKE_PIP_FAIL_ON})" <<< "$reqs"; then
  fail
fi
if [[ -n "${FAKE_PIP_FAIL_ONCE_ON:-}" && ! -e "$FAKE_CALLS.failed-once" ]] \\
    && grep -Eq "^(${FAKE_PIP_FAIL_ONCE_ON})" <<< "$reqs"; then
  touch "$FAKE_CALLS.failed-once"
  fail
fi
if [[ -n "$prefix" ]]; then
  site="$prefix/lib/python3.12/site-packages"
  mkdir -p "$site" "$prefix/bin"
  if grep -Eqi "^fakepkg" <<< "$reqs"; then
    mkdir -p "$site/fakepkg"
    echo "VALUE = 42" > "$site/fakepkg/__init__.py"
  fi
  if grep -Eqi "^awscli" <<< "$reqs"; then
    mkdir -p "$site/awscli"
    touch "$site/awscli/__init__.py"
    printf '#!/bin/sh\\necho aws-cli/1.40.0 from pip\\n' > "$prefix/bin/aws"
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


def awscli_bin(box: dict[str, Any], key: str) -> Path:
    """Where the build of ``key`` puts ``aws``: last on every container's PATH."""
    return builds_dir(box) / key / "awscli" / "bin"


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
    assert env["PATH"].split(os.pathsep) == [
        str(folder / "bin"),
        "/usr/bin",
        "/bin",
        str(folder / "awscli" / "bin"),
    ]
    assert "using the prebuilt folder" in caplog.text
    assert f"the AWS CLI is on PATH: {folder}/awscli/bin/aws" in caplog.text


def test_container_keeps_the_users_pythonpath_after_the_build(box: dict[str, Any]) -> None:
    write_requirements(box)
    build(box)
    box["env"]["PYTHONPATH"] = "/mine"

    env = install(box)

    assert env["PYTHONPATH"].split(os.pathsep)[1:] == ["/mine"]


def test_container_installs_only_requirements_txt_at_start_while_the_build_is_missing(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    env = install(box)

    key = key_of(data, box["env"])
    [call] = pip_calls(box)
    args = call.split()
    assert args[args.index("-r") + 1 :] == [str(box["sync"] / "requirements.txt")]
    assert "awscli" not in args and "--prefix" not in args
    assert "PYTHONPATH" not in env
    assert env["PATH"].split(os.pathsep) == ["/usr/bin", "/bin", str(awscli_bin(box, key))]
    assert "not built yet" in caplog.text
    assert (
        "the AWS CLI (aws) is not on PATH yet: it comes with the requirements build "
        f"{key} (not built yet)" in caplog.text
    )


def test_container_installs_at_start_when_the_build_failed(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)
    assert build(box, FAKE_PIP_EXIT="1") == 1
    box["calls"].write_text("")

    env = install(box)

    [call] = pip_calls(box)
    assert "awscli" not in call.split()
    assert env["PATH"].split(os.pathsep)[-1] == str(awscli_bin(box, key_of(data, box["env"])))
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
    new = write_requirements(box, "fakepkg==2.0\n")
    box["calls"].write_text("")

    env = install(box)

    assert len(pip_calls(box)) == 1
    assert "PYTHONPATH" not in env
    # the AWS CLI to come is the new build's, not the old one's
    assert env["PATH"].split(os.pathsep)[-1] == str(awscli_bin(box, key_of(new, box["env"])))
    assert shutil.which("aws", path=env["PATH"]) is None


@pytest.mark.parametrize("text", [None, "", "# nothing\n\n"])
def test_container_without_requirements_runs_no_pip_at_start(
    box: dict[str, Any], text: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    if text is not None:
        write_requirements(box, text)
    caplog.set_level(logging.INFO)

    env = install(box)

    key = key_of(None, box["env"])
    assert pip_calls(box) == []
    assert env == runtime_requirements.with_aws_cli(box["env"], str(builds_dir(box)), key)
    assert env["PATH"].split(os.pathsep) == ["/usr/bin", "/bin", str(awscli_bin(box, key))]
    assert "installing" not in caplog.text
    assert f"it comes with the requirements build {key} (not built yet)" in caplog.text


def test_container_started_before_the_build_finds_aws_once_it_lands(
    box: dict[str, Any],
) -> None:
    data = write_requirements(box)
    env = install(box)  # no build yet: requirements.txt installed here, aws to come
    assert shutil.which("aws", path=env["PATH"]) is None

    assert build(box) == 0

    # the same environment, unchanged since the start: the build's wrapper is now on PATH
    folder = builds_dir(box) / key_of(data, box["env"])
    aws = shutil.which("aws", path=env["PATH"])
    assert aws == str(folder / "awscli" / "bin" / "aws")
    run = subprocess.run([aws, "--version"], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("aws-cli/1.46.3 fake args=--version ")
    # and a container started after it has the same last PATH entry, now with the build first
    after = install(box)
    assert after["PATH"].split(os.pathsep)[-1] == env["PATH"].split(os.pathsep)[-1]
    assert after["PATH"].split(os.pathsep)[0] == str(folder / "bin")


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
    assert aws == str(folder / "awscli" / "bin" / "aws")
    run = subprocess.run([aws, "s3", "ls"], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("aws-cli/1.46.3 fake args=s3 ls ")
    assert f"the AWS CLI is on PATH: {aws}" in caplog.text


def test_container_with_the_users_awscli_pin_installs_only_the_file(box: dict[str, Any]) -> None:
    write_requirements(box, "fakepkg==1.0\nawscli==1.40.0\n")

    install(box)

    [call] = pip_calls(box)
    assert call.split()[-2:] == ["-r", str(box["sync"] / "requirements.txt")]


def test_container_whose_requirements_fail_tries_once_and_goes_on(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)
    box["env"]["FAKE_PIP_FAIL_ON"] = "fakepkg"

    env = install(box)

    assert len(pip_calls(box)) == 1
    assert "requirements install failed (exit 1)" in caplog.text
    assert env["PATH"].split(os.pathsep)[-1] == str(awscli_bin(box, key_of(data, box["env"])))


def test_container_whose_install_is_killed_does_not_try_again(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(
        runtime_requirements, "pip_install", lambda args, *a, **k: seen.append(list(args))
    )
    write_requirements(box)

    install(box)

    assert seen == [["-r", str(box["sync"] / "requirements.txt")]]
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
    assert not (folder / "lib/python3.12/site-packages/awscli").exists()  # not Airflow's
    assert (folder / "awscli/lib/python3.12/site-packages/awscli/__init__.py").is_file()
    assert not (folder / "awscli/lib/python3.12/site-packages/fakepkg").exists()
    assert not (folder / "bin/aws").exists()
    assert (folder / "requirements.txt").read_bytes() == data  # requirements.txt alone
    assert sorted(p.name for p in builds_dir(box).iterdir()) == [key]


def test_build_runs_requirements_constrained_then_the_aws_cli_unconstrained(
    box: dict[str, Any], tmp_path: Path
) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("fakepkg==1.0\ndocutils==0.21.2\nrsa==4.9.1\n")
    write_requirements(box)

    assert build(box, OPENMWAA_CONSTRAINTS_URL=str(constraints)) == 0

    key = key_of(b"fakepkg==1.0\n", {**box["env"], "OPENMWAA_CONSTRAINTS_URL": str(constraints)})
    assert (builds_dir(box) / key / BUILD_MARKER).is_file()
    first, second = (call.split() for call in pip_calls(box))
    tmp = first[first.index("--prefix") + 1]
    assert Path(tmp).parent == builds_dir(box) and Path(tmp).name.startswith(f".tmp-{key}-")
    assert first[first.index("-r") + 1] == f"{tmp}/requirements.txt"
    assert "-c" in first and "awscli" not in first
    assert second[second.index("install") + 1 :] == [
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--prefix",
        f"{tmp}/awscli",
        "--ignore-installed",
        "--no-warn-conflicts",
        "awscli",
    ]  # no -c: awscli pins docutils and rsa below what Airflow's constraints pin


def test_build_writes_an_executable_aws_wrapper_for_the_images_python(box: dict[str, Any]) -> None:
    assert build(box) == 0

    folder = builds_dir(box) / key_of(None, box["env"])
    aws = folder / "awscli" / "bin" / "aws"
    assert aws.stat().st_mode & 0o755 == 0o755
    text = aws.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f'exec "{box["python"]}" -m awscli "$@"' in text
    assert "lib/python3.12/site-packages" in text
    assert "from pip" not in text  # pip's own script, replaced


def test_aws_wrapper_runs_only_the_aws_clis_packages_after_the_rename(
    box: dict[str, Any],
) -> None:
    assert build(box) == 0
    folder = builds_dir(box) / key_of(None, box["env"])
    moved = folder.parent / "moved"
    folder.rename(moved)  # the wrapper finds its packages from where it is, not where built

    env = {**box["env"], "PYTHONPATH": "/airflow/build/site-packages", "PYTHONNOUSERSITE": ""}
    run = subprocess.run(
        [str(moved / "awscli/bin/aws"), "sts", "get-caller-identity"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    fields = dict(part.split("=", 1) for part in run.stdout.split() if "=" in part)
    assert "args=sts get-caller-identity " in run.stdout
    assert os.path.realpath(fields["PYTHONPATH"]) == os.path.realpath(
        moved / "awscli/lib/python3.12/site-packages"
    )
    assert fields["NOUSERSITE"] == "1"


def test_aws_wrapper_runs_the_awscli_module_with_a_real_python(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def pip_writing_a_fake_awscli(args: list[str], *a: Any, **k: Any) -> int:
        site = Path(args[args.index("--prefix") + 1]) / "lib/python3.12/site-packages"
        (site / "awscli").mkdir(parents=True)
        (site / "awscli/__init__.py").write_text("")
        (site / "awscli/__main__.py").write_text(
            "import os, sys\n"
            "print(__file__)\n"
            "print(os.environ['PYTHONPATH'])\n"
            "print(' '.join(sys.argv[1:]))\n"
        )
        (site.parents[2] / "bin").mkdir()
        return 0

    monkeypatch.setattr(runtime_requirements, "pip_install", pip_writing_a_fake_awscli)
    folder = tmp_path / ".tmp-key-1"
    folder.mkdir()
    error = runtime_requirements.build_aws_cli(
        str(folder), box["env"], box["settings"], sys.executable, time.monotonic() + 60
    )
    assert error == ""
    final = tmp_path / "key"
    folder.rename(final)

    run = subprocess.run(
        [str(final / "awscli/bin/aws"), "--version"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "elsewhere")},
        capture_output=True,
        text=True,
        check=True,
    )

    main, pythonpath, args = run.stdout.splitlines()
    site = os.path.realpath(final / "awscli/lib/python3.12/site-packages")
    assert os.path.realpath(main) == os.path.join(site, "awscli", "__main__.py")
    assert os.path.realpath(pythonpath) == site
    assert args == "--version"


def test_build_with_the_users_awscli_line_runs_no_separate_aws_cli(box: dict[str, Any]) -> None:
    data = write_requirements(box, "fakepkg==1.0\nAWSCLI==1.40.0\n")

    assert build(box) == 0

    folder = builds_dir(box) / key_of(data, box["env"])
    [call] = pip_calls(box)
    assert "awscli" not in call.split()
    assert not (folder / "awscli").exists()
    marker = json.loads((folder / BUILD_MARKER).read_text())
    assert "aws_cli_error" not in marker
    env = install(box)  # the user's aws, from pip, in the build's own bin
    assert shutil.which("aws", path=env["PATH"]) == str(folder / "bin" / "aws")


def test_build_with_the_users_awscli_pin_that_fails_is_failed(box: dict[str, Any]) -> None:
    data = write_requirements(box, "fakepkg==1.0\nAWSCLI==1.40.0\n")

    assert build(box, FAKE_PIP_FAIL_ON="AWSCLI") == 1  # the user's pin fails: no retry

    assert len(pip_calls(box)) == 1
    key = key_of(data, box["env"])
    assert key == runtime_requirements.requirements_key(data, box["env"])
    assert (builds_dir(box) / f"{key}.failed").is_file()


def test_build_turns_pip_user_off_and_keeps_startup_exports_for_both_installs(
    box: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    real_pip = runtime_requirements.pip_install

    def recording_pip(args: Any, env: Any, *a: Any, **k: Any) -> int | None:
        seen.append(dict(env))
        return real_pip(args, env, *a, **k)

    monkeypatch.setattr(runtime_requirements, "pip_install", recording_pip)
    (box["sync"] / "startup.sh").write_text("export PIP_INDEX_URL=https://pypi.example.com\n")
    write_requirements(box)

    assert build(box, PIP_USER="true") == 0

    assert len(seen) == 2
    for env in seen:
        assert env["PIP_USER"] == "false"
        assert env["PIP_INDEX_URL"] == "https://pypi.example.com"


def test_build_runs_startup_sh_with_mwaas_variables_as_a_worker(box: dict[str, Any]) -> None:
    seen = box["sync"] / "seen.txt"
    (box["sync"] / "startup.sh").write_text(
        f'echo "$AIRFLOW_ENV_NAME $MWAA_AIRFLOW_COMPONENT $AIRFLOW_VERSION" > "{seen}"\n'
    )

    assert build(box, OPENMWAA_ENVIRONMENT_NAME="prod-etl") == 0

    assert seen.read_text() == "prod-etl worker 3.3.2\n"


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
        winner.mkdir(exist_ok=True)
        marker = {"key": key, "python": "3.12", "airflow": "3.3.2"}
        (winner / BUILD_MARKER).write_text(json.dumps(marker))
        return code

    monkeypatch.setattr(runtime_requirements, "pip_install", pip_then_another_build_wins)

    assert build(box) == 0
    assert sorted(p.name for p in builds_dir(box).iterdir()) == [key]
    assert not (builds_dir(box) / key / "lib").exists()  # the winner's folder, untouched


@pytest.mark.parametrize("text", [None, "# nothing\n"])
def test_build_without_requirements_builds_the_aws_cli_alone(
    box: dict[str, Any], text: str | None
) -> None:
    if text is not None:
        write_requirements(box, text)

    assert build(box) == 0

    folder = builds_dir(box) / key_of(None, box["env"])
    assert (folder / "awscli/bin/aws").is_file()
    assert (folder / "requirements.txt").read_bytes() == b""
    [call] = pip_calls(box)
    assert call.split()[-1] == "awscli" and "-r" not in call.split()


def test_build_whose_aws_cli_fails_twice_is_complete_and_says_why(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    assert build(box, FAKE_PIP_FAIL_ON="awscli") == 0

    key = key_of(data, box["env"])
    folder = builds_dir(box) / key
    marker = json.loads((folder / BUILD_MARKER).read_text())
    assert marker["aws_cli_error"] == "the AWS CLI (awscli) could not be installed (pip exit 1)"
    assert (folder / "lib/python3.12/site-packages/fakepkg/__init__.py").is_file()
    assert not (folder / "awscli").exists()  # its partial install removed
    assert (folder / "requirements.txt").read_bytes() == data
    assert not (builds_dir(box) / f"{key}.failed").exists()
    calls = pip_calls(box)
    assert len(calls) == 1 + runtime_requirements.AWS_CLI_ATTEMPTS == 3
    assert [c.split()[-1] for c in calls[1:]] == ["awscli", "awscli"]
    assert "attempt 1/2" in caplog.text and "attempt 2/2" in caplog.text
    assert f"requirements build {key} is complete WITHOUT the AWS CLI" in caplog.text
    box["calls"].write_text("")
    caplog.clear()

    env = install(box)  # a container uses it, and says why aws is missing

    assert pip_calls(box) == []
    assert env["PATH"].split(os.pathsep)[0] == str(folder / "bin")
    assert env["PATH"].split(os.pathsep)[-1] == str(folder / "awscli" / "bin")
    assert shutil.which("aws", path=env["PATH"]) is None
    assert (
        "the AWS CLI (aws) is not on PATH yet: the AWS CLI (awscli) could not be installed"
        in caplog.text
    )


def test_build_whose_aws_cli_fails_once_retries_and_is_complete(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    assert build(box, FAKE_PIP_FAIL_ONCE_ON="awscli") == 0

    folder = builds_dir(box) / key_of(data, box["env"])
    assert "aws_cli_error" not in json.loads((folder / BUILD_MARKER).read_text())
    assert (folder / "awscli/bin/aws").is_file()
    assert not (folder / "awscli/partial").exists()  # the failed attempt's leftovers
    assert len(pip_calls(box)) == 3
    assert "attempt 1/2" in caplog.text
    assert "WITHOUT the AWS CLI" not in caplog.text


def test_build_of_the_aws_cli_alone_that_fails_completes_empty(box: dict[str, Any]) -> None:
    assert build(box, FAKE_PIP_FAIL_ON="awscli") == 0

    key = key_of(None, box["env"])
    assert "aws_cli_error" in json.loads((builds_dir(box) / key / BUILD_MARKER).read_text())
    assert not (builds_dir(box) / f"{key}.failed").exists()
    assert len(pip_calls(box)) == 2  # the AWS CLI twice, nothing else to install


def test_build_whose_requirements_fail_is_failed_without_the_aws_cli(
    box: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    data = write_requirements(box)

    assert build(box, FAKE_PIP_FAIL_ON="fakepkg") == 1

    key = key_of(data, box["env"])
    assert not (builds_dir(box) / key).exists()
    failed = json.loads((builds_dir(box) / f"{key}.failed").read_text())
    assert failed["error"] == "pip exit 1"
    [call] = pip_calls(box)  # requirements.txt only: no AWS CLI run, no retry
    assert "awscli" not in call.split()
    assert f"requirements build {key} failed (pip exit 1)" in caplog.text


def test_aws_cli_gets_no_run_when_the_build_has_no_time_left(
    box: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()

    error = runtime_requirements.build_aws_cli(
        str(folder), box["env"], box["settings"], box["python"], time.monotonic()
    )

    assert error == "no time left in the build"
    assert pip_calls(box) == []


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
