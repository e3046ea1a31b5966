"""The user's ``requirements.txt`` and the AWS CLI: the prebuilt folder, the install at start,
the one-shot build.

The build's key covers the *effective* requirements (:func:`effective_requirements`): the
file's, plus the AWS CLI (``awscli``, v1 from PyPI) unless the file names it, since MWAA's
image has ``aws`` on ``PATH`` and the stock apache/airflow image does not. A container uses
the folder the one-shot requirements build made for their key (``.openmwaa/requirements/<key>``
on the sync root, see :func:`requirements_key`): first on ``PYTHONPATH`` and ``PATH``, no pip.
While that build runs, or if it failed, it pip-installs requirements.txt into the image's
environment with the running Airflow's constraints, 9 minutes at most
(:func:`install_requirements`; a failure is logged, not fatal). The AWS CLI is never installed
at start: it lives in the build's ``awscli/`` folder, on its own (:func:`build_aws_cli`), whose
``bin`` every container has on ``PATH`` from the start, so ``aws`` works in running containers
as soon as the build is in place.

The build (:func:`build_requirements`, ``OPENMWAA_COMPONENT=build-requirements``) sources
startup.sh, then runs ``pip install --prefix`` into a temporary folder on the sync root,
renamed to its key's folder with a complete marker inside. Every pip run reads the index
:mod:`.package_index` picks (the environment's PyPI mirror when it has one, unless
requirements.txt or startup.sh names an index). Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping

from . import config
from .contracts import REQUIREMENTS_BUILD_MARKER as BUILD_MARKER
from .contracts import REQUIREMENTS_BUILDS_DIR as BUILDS_DIR
from .contracts import REQUIREMENTS_KEY, STARTUP_SCRIPT_KEY, WORKER
from .contracts import REQUIREMENTS_KEY_VARIABLES as KEY_VARIABLES
from .mwaa_conventions import mwaa_variables
from .package_index import PackageIndexError, PipIndex
from .startup_steps import Settings, outcome, pip_install, run_startup_script

LOG = logging.getLogger("openmwaa.bootstrap")

REQUIREMENTS_TIMEOUT = 9 * 60
BUILD_TIMEOUT = 30 * 60
KEEP_BUILDS = 3
AWS_CLI = "awscli"
"""The AWS CLI's project on PyPI (v1): added to every environment's requirements."""
AWS_CLI_DIR = "awscli"
"""The AWS CLI's own prefix inside a build's folder."""
AWS_CLI_ATTEMPTS = 2
AWS_CLI_WRAPPER = """#!/bin/sh
# The AWS CLI of this requirements build, isolated from Airflow's packages (openmwaa).
here="$(dirname "$(readlink -f "$0")")"
PYTHONPATH="$here/../lib/python{python_version}/site-packages" PYTHONNOUSERSITE=1 \\
    exec "{python}" -m awscli "$@"
"""
"""``<build>/awscli/bin/aws``: the image's Python with only the AWS CLI's own packages first
on its path, wherever the folder is (it is built under a temporary name, then renamed)."""


def project_names(text: str) -> set[str]:
    """The projects a requirements file names on its own lines, normalised as PEP 503 does
    (``AWS_CLI`` and ``awscli`` are one project, ``aws-cli`` another). Comments, blank lines
    and options (``-r``, ``-c``, ``-e``, ``--index-url``...) name none; files a ``-r`` line
    includes are not read."""
    names: set[str] = set()
    for line in text.replace("\\\n", "").splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        match = re.match(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group()).lower())
    return names


def effective_requirements(requirements: bytes | None) -> bytes:
    """What is installed and keyed: requirements.txt's bytes (nothing when it is missing or
    has no requirement), ending with a newline, then ``awscli`` on a line of its own unless
    the file names that project (any specifier: the user's pin wins). The DAG sync Lambda has
    the same function (``lambdas/dag_sync/requirements_build.py``; a unit test keeps them
    equal)."""
    text = requirements or b""
    if config.requirements_are_empty(text.decode("utf-8", "replace")):
        text = b""
    elif not text.endswith(b"\n"):
        text += b"\n"
    if AWS_CLI in project_names(text.decode("utf-8", "replace")):
        return text
    return text + f"{AWS_CLI}\n".encode()


def adds_aws_cli(requirements: bytes | None) -> bool:
    """True if :func:`effective_requirements` adds the AWS CLI to these requirements."""
    return AWS_CLI not in project_names((requirements or b"").decode("utf-8", "replace"))


def requirements_key(requirements: bytes, env: Mapping[str, str]) -> str:
    """The key of a requirements build: SHA-256 of ``requirements`` (the effective
    requirements' bytes, :func:`effective_requirements`), the image's Airflow and Python
    versions and the constraints setting (:data:`KEY_VARIABLES`; unset
    ``OPENMWAA_CONSTRAINTS_URL`` means the default sources). The DAG sync Lambda computes the
    same key (``lambdas/dag_sync/requirements_build.py``; a unit test keeps them equal)."""
    inputs: dict[str, str | None] = {name: env.get(name) for name in KEY_VARIABLES}
    inputs["requirements"] = hashlib.sha256(requirements).hexdigest()
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]


def site_packages(prefix: str, python_version: str) -> str:
    """Where ``pip install --prefix`` puts packages for this Python line."""
    return os.path.join(prefix, "lib", f"python{python_version}", "site-packages")


def read_json(path: str) -> dict[str, object] | None:
    """A JSON object from a file; None if it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: str, data: Mapping[str, object]) -> None:
    """Write a JSON file atomically (temporary file, then rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, path)


def build_state(builds: str, key: str, python: str, airflow: str) -> tuple[str, str]:
    """What the build of ``key`` offers this container: ``("use", folder)`` when it is
    complete and was built with this Python and Airflow; ``("failed", error)``;
    ``("mismatch", what)`` when built with another Python or Airflow; ``("missing", "")``."""
    folder = os.path.join(builds, key)
    marker = read_json(os.path.join(folder, BUILD_MARKER))
    if marker is not None:
        built = (marker.get("python"), marker.get("airflow"))
        if built == (python, airflow):
            return "use", folder
        return "mismatch", f"built with Python {built[0]} and Airflow {built[1]}"
    failed = read_json(os.path.join(builds, f"{key}.failed"))
    if failed is not None:
        return "failed", str(failed.get("error", "unknown error"))
    return "missing", ""


def with_build(env: Mapping[str, str], folder: str, python_version: str) -> dict[str, str]:
    """``env`` with a build's site-packages first on ``PYTHONPATH`` and its bin on ``PATH``."""
    result = dict(env)
    entries = (("PYTHONPATH", site_packages(folder, python_version)), ("PATH", f"{folder}/bin"))
    for name, entry in entries:
        old = result.get(name, "")
        result[name] = f"{entry}{os.pathsep}{old}" if old else entry
    return result


def read_requirements(path: str) -> bytes | None:
    """requirements.txt's bytes; None if it is missing or has no requirement."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        LOG.info("no requirements at %s", path)
        return None
    if config.requirements_are_empty(data.decode("utf-8", "replace")):
        LOG.info("requirements file %s is empty", path)
        return None
    return data


def aws_cli_bin(builds: str, key: str) -> str:
    """The folder of ``aws`` in the build of ``key`` (present once that build is complete)."""
    return os.path.join(builds, key, AWS_CLI_DIR, "bin")


def with_aws_cli(env: Mapping[str, str], builds: str, key: str) -> dict[str, str]:
    """``env`` with the build's AWS CLI last on ``PATH``: added even before the build is
    complete, so ``aws`` resolves in this container as soon as the build is renamed into
    place; last, so an ``aws`` of the user's requirements or image wins."""
    result = dict(env)
    old = result.get("PATH", "")
    entry = aws_cli_bin(builds, key)
    result["PATH"] = f"{old}{os.pathsep}{entry}" if old else entry
    return result


def report_aws_cli(env: Mapping[str, str], why: str) -> None:
    """Log where ``aws`` is on the ``PATH`` Airflow runs with, or why it is not (yet)."""
    found = shutil.which("aws", path=env.get("PATH", os.defpath))
    if found:
        LOG.info("the AWS CLI is on PATH: %s", found)
    else:
        LOG.warning("the AWS CLI (aws) is not on PATH yet: %s", why)


def install_here(path: str, env: Mapping[str, str], settings: Settings, python: str) -> None:
    """pip-install requirements.txt into the image's environment, 9 minutes at most; a
    failure is logged, not fatal."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    own = config.requirements_have_constraints(text)
    LOG.info("installing requirements from %s (limit %d s)", path, REQUIREMENTS_TIMEOUT)
    with PipIndex() as index:
        try:
            pip_env = index.environment(text, env)
        except PackageIndexError as error:
            LOG.error("requirements not installed: %s; continuing without them", error)
            return
        code = pip_install(
            ["-r", path], pip_env, settings, REQUIREMENTS_TIMEOUT, python, constrained=not own
        )
        if code:
            index.report_failure()
    if code == 0:
        LOG.info("requirements installed")
    elif code is None:
        LOG.error(
            "requirements install killed after %d s; continuing without", REQUIREMENTS_TIMEOUT
        )
    else:
        LOG.error(
            "requirements install failed (exit %d); continuing without them. A requirement "
            "may conflict with the packages Airflow runs on: check requirements.txt",
            code,
        )


def install_requirements(
    path: str, env: Mapping[str, str], settings: Settings, python: str
) -> dict[str, str]:
    """Use the requirements build's folder if it is complete for this container; else
    pip-install requirements.txt here (:func:`install_here`: 9 minutes at most; failure
    logged, not fatal) and wait for the build's AWS CLI. Returns ``env`` as Airflow should run
    with it."""
    data = read_requirements(path)
    key = requirements_key(effective_requirements(data), env)
    builds = os.path.join(settings.sync_root, BUILDS_DIR)
    state, detail = build_state(builds, key, settings.python_version, settings.airflow_version)
    if state == "use":
        LOG.info("requirements: using the prebuilt folder %s, no pip install", detail)
        result = with_aws_cli(with_build(env, detail, settings.python_version), builds, key)
        marker = read_json(os.path.join(detail, BUILD_MARKER)) or {}
        report_aws_cli(result, str(marker.get("aws_cli_error", "its build did not add it")))
        return result
    reason = {"missing": "not built yet", "failed": f"its build failed: {detail}"}
    why = reason.get(state, detail)
    if data is not None:
        LOG.warning(
            "requirements: no prebuilt folder for key %s (%s): installing them here", key, why
        )
        install_here(path, env, settings, python)
    result = with_aws_cli(env, builds, key)
    report_aws_cli(result, f"it comes with the requirements build {key} ({why})")
    return result


def prune_builds(builds: str, current: str, now: float) -> None:
    """Remove temporary folders older than twice the build limit, all complete builds but
    the current one and the :data:`KEEP_BUILDS` - 1 newest others, and markers older than a
    day of other keys. Never follows a symlink."""
    complete: list[tuple[float, str]] = []
    for name in os.listdir(builds):
        path = os.path.join(builds, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:  # another build removed it
            continue
        if name.startswith(".tmp-"):
            stale = now - info.st_mtime > 2 * BUILD_TIMEOUT
            if stale and os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
        elif name.endswith((".failed", ".requested")) and not name.startswith(current):
            if now - info.st_mtime > 86400:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        elif name != current and not os.path.islink(path):
            with contextlib.suppress(OSError):
                complete.append((os.lstat(os.path.join(path, BUILD_MARKER)).st_mtime, name))
    for _, name in sorted(complete, reverse=True)[KEEP_BUILDS - 1 :]:
        LOG.info("removing the old requirements build %s", name)
        shutil.rmtree(os.path.join(builds, name), ignore_errors=True)


def build_into(
    builds: str,
    key: str,
    requirements: bytes,
    env: Mapping[str, str],
    settings: Settings,
    python: str,
    timeout: float,
    index: PipIndex,
) -> tuple[str, int | None]:
    """``pip install --prefix`` of requirements.txt's ``requirements`` (``b""`` for none)
    into a new temporary folder of ``builds`` (with a snapshot of them, ``requirements.txt``),
    from the package index ``index`` picks. Returns the folder and pip's exit code (0 with no
    pip run when they name nothing; None if killed). Raises :class:`PackageIndexError` when
    the mirror cannot be used (the folder is removed)."""
    tmp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=builds)
    snapshot = os.path.join(tmp, REQUIREMENTS_KEY)  # what this folder installed
    with open(snapshot, "wb") as f:
        f.write(requirements)
    text = requirements.decode("utf-8", "replace")
    if config.requirements_are_empty(text):
        return tmp, 0
    if timeout < 1:
        return tmp, None
    own = config.requirements_have_constraints(text)
    try:
        pip_env = index.environment(text, env)
    except PackageIndexError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    code = pip_install(
        ["--prefix", tmp, "-r", snapshot], pip_env, settings, timeout, python, constrained=not own
    )
    if code:
        index.report_failure()
    return tmp, code


def build_aws_cli(
    folder: str,
    env: Mapping[str, str],
    settings: Settings,
    python: str,
    deadline: float,
    index: PipIndex | None = None,
) -> str:
    """Install the AWS CLI into ``<folder>/awscli`` on its own: every package it needs,
    without Airflow's constraints (awscli pins docutils and rsa below what Airflow's
    constraints pin), never on Airflow's ``PYTHONPATH``; ``bin/aws`` is a wrapper running it
    with those packages alone first. Tried twice. From the package index ``index`` picks for a
    run without requirements.txt (a new :class:`PipIndex` if None): the mirror when there is
    one, whatever index requirements.txt names. Returns "" or why it is missing."""
    if index is None:
        with PipIndex() as own:
            return build_aws_cli(folder, env, settings, python, deadline, own)
    prefix = os.path.join(folder, AWS_CLI_DIR)
    error = ""
    try:
        pip_env = index.environment("", env)
    except PackageIndexError as failure:
        LOG.warning("the AWS CLI (awscli) cannot be installed: %s", failure)
        return f"the AWS CLI (awscli) could not be installed: {failure}"
    for attempt in range(1, AWS_CLI_ATTEMPTS + 1):
        left = deadline - time.monotonic()
        if left < 1:
            return error or "no time left in the build"
        shutil.rmtree(prefix, ignore_errors=True)
        args = ["--prefix", prefix, "--ignore-installed", "--no-warn-conflicts", AWS_CLI]
        code = pip_install(args, pip_env, settings, left, python, constrained=False)
        if code:
            index.report_failure()
        if code == 0:
            os.makedirs(os.path.join(prefix, "bin"), exist_ok=True)
            wrapper = os.path.join(prefix, "bin", "aws")
            with open(wrapper, "w", encoding="utf-8") as f:
                f.write(
                    AWS_CLI_WRAPPER.format(python=python, python_version=settings.python_version)
                )
            os.chmod(wrapper, 0o755)
            return ""
        error = f"the AWS CLI (awscli) could not be installed (pip {outcome(code)})"
        LOG.warning("%s, attempt %d/%d", error, attempt, AWS_CLI_ATTEMPTS)
    shutil.rmtree(prefix, ignore_errors=True)
    return error


def build_requirements(
    env: Mapping[str, str], settings: Settings, python: str, now: Callable[[], float] = time.time
) -> int:
    """The one-shot requirements build: install the effective requirements (requirements.txt
    and the AWS CLI, :func:`effective_requirements`) once, for every container.

    startup.sh runs first (as for a worker, with MWAA's variables: its exports, such as pip's
    index, apply), then ``pip install --prefix`` of requirements.txt with the containers'
    constraints into a temporary folder of ``<sync root>/.openmwaa/requirements/``, then the
    AWS CLI into its ``awscli/`` (:func:`build_aws_cli`, unless requirements.txt names
    awscli); the folder gets a complete marker and is renamed to the key's folder: containers
    see all of it or nothing. A requirements.txt that does not install writes ``<key>.failed``
    (containers then install at start, the DAG sync reports it) and touches no other build;
    an AWS CLI that does not install leaves the build complete without ``aws`` (its marker and
    log say why). Returns 0 when the key's folder is complete, 1 if not.
    """
    data = read_requirements(os.path.join(settings.sync_root, REQUIREMENTS_KEY))
    effective = effective_requirements(data)
    key = requirements_key(effective, env)
    builds = os.path.join(settings.sync_root, BUILDS_DIR)
    os.makedirs(builds, exist_ok=True)
    prune_builds(builds, key, now())
    versions = (settings.python_version, settings.airflow_version)
    if build_state(builds, key, *versions)[0] == "use":
        LOG.info("requirements build %s is already complete", key)
        return 0
    build_env = run_startup_script(
        os.path.join(settings.sync_root, STARTUP_SCRIPT_KEY),
        {**env, **mwaa_variables(env, settings.airflow_version)},
        WORKER,
    )
    build_env["PIP_USER"] = "false"  # the stock image's PIP_USER=true refuses --prefix
    started = time.monotonic()
    deadline = started + BUILD_TIMEOUT
    cli = adds_aws_cli(data)
    LOG.info(
        "building requirements %s%s (limit %d s)",
        key,
        " and the AWS CLI (awscli)" if cli else "",
        BUILD_TIMEOUT,
    )
    final = os.path.join(builds, key)
    with PipIndex() as index:
        try:
            tmp, code = build_into(
                builds, key, data or b"", build_env, settings, python, BUILD_TIMEOUT, index
            )
        except PackageIndexError as failure:
            return build_failed(builds, key, f"package index: {failure}", now())
        cli_error = (
            build_aws_cli(tmp, build_env, settings, python, deadline, index)
            if code == 0 and cli
            else ""
        )
    if code == 0:
        marker: dict[str, object] = {
            "key": key,
            "python": versions[0],
            "airflow": versions[1],
            "at": now(),
        }
        if cli_error:
            marker["aws_cli_error"] = cli_error
        write_json(os.path.join(tmp, BUILD_MARKER), marker)
        with contextlib.suppress(OSError):
            os.rename(tmp, final)
    shutil.rmtree(tmp, ignore_errors=True)
    state, detail = build_state(builds, key, *versions)
    if state == "use":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(builds, f"{key}.failed"))
        LOG.info("requirements build %s complete in %.0f s", key, time.monotonic() - started)
        if cli_error:
            LOG.error(
                "requirements build %s is complete WITHOUT the AWS CLI: %s; aws is not on the "
                "containers' PATH until requirements.txt changes (or name awscli in it)",
                key,
                cli_error,
            )
        return 0
    error = f"pip {outcome(code)}" if code != 0 else f"cannot install {final}: {detail}"
    return build_failed(builds, key, error, now())


def build_failed(builds: str, key: str, error: str, at: float) -> int:
    """Write ``<key>.failed`` with ``error`` (the DAG sync reports it, containers install at
    start), log it, and return the build's exit code, 1."""
    write_json(os.path.join(builds, f"{key}.failed"), {"key": key, "error": error, "at": at})
    LOG.error(
        "requirements build %s failed (%s): containers install requirements.txt at start "
        "until a build succeeds; other builds are untouched",
        key,
        error,
    )
    return 1
