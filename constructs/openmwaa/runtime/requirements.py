"""The user's ``requirements.txt``: the prebuilt folder, the install at start, the one-shot build.

A container uses the folder the one-shot requirements build made for the file's key
(``.openmwaa/requirements/<key>`` on the sync root, see :func:`requirements_key`): first on
``PYTHONPATH`` and ``PATH``, no pip. While that build runs, or if it failed, it pip-installs
the file into the image's environment with the running Airflow's constraints, 9 minutes at
most (:func:`install_requirements`; a failure is logged, not fatal).

The build (:func:`build_requirements`, ``OPENMWAA_COMPONENT=build-requirements``) sources
startup.sh, then runs ``pip install --prefix`` into a temporary folder on the sync root,
renamed to its key's folder with a complete marker inside. Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping

from . import config
from .contracts import REQUIREMENTS_BUILD_MARKER as BUILD_MARKER
from .contracts import REQUIREMENTS_BUILDS_DIR as BUILDS_DIR
from .contracts import REQUIREMENTS_KEY, STARTUP_SCRIPT_KEY, WORKER
from .contracts import REQUIREMENTS_KEY_VARIABLES as KEY_VARIABLES
from .startup_steps import Settings, outcome, pip_install, run_startup_script

LOG = logging.getLogger("openmwaa.bootstrap")

REQUIREMENTS_TIMEOUT = 9 * 60
BUILD_TIMEOUT = 30 * 60
KEEP_BUILDS = 3


def requirements_key(requirements: bytes, env: Mapping[str, str]) -> str:
    """The key of a requirements build: SHA-256 of requirements.txt's bytes, the image's
    Airflow and Python versions and the constraints setting (:data:`KEY_VARIABLES`; unset
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


def install_requirements(
    path: str, env: Mapping[str, str], settings: Settings, python: str
) -> dict[str, str]:
    """Use the requirements build's folder if it is complete for this container; else
    pip-install requirements.txt here (9 minutes at most; failure logged, not fatal).
    Returns ``env`` as Airflow should run with it."""
    data = read_requirements(path)
    if data is None:
        return dict(env)
    key = requirements_key(data, env)
    builds = os.path.join(settings.sync_root, BUILDS_DIR)
    state, detail = build_state(builds, key, settings.python_version, settings.airflow_version)
    if state == "use":
        LOG.info("requirements: using the prebuilt folder %s, no pip install", detail)
        return with_build(env, detail, settings.python_version)
    reason = {"missing": "not built yet", "failed": f"its build failed: {detail}"}
    LOG.warning(
        "requirements: no prebuilt folder for key %s (%s): installing them here",
        key,
        reason.get(state, detail),
    )
    own = config.requirements_have_constraints(data.decode("utf-8", "replace"))
    LOG.info("installing requirements from %s (limit %d s)", path, REQUIREMENTS_TIMEOUT)
    code = pip_install(
        ["-r", path], env, settings, REQUIREMENTS_TIMEOUT, python, constrained=not own
    )
    if code is None:
        LOG.error(
            "requirements install killed after %d s; continuing without", REQUIREMENTS_TIMEOUT
        )
    elif code != 0:
        LOG.error(
            "requirements install failed (exit %d); continuing without them. A requirement "
            "may conflict with the packages Airflow runs on: check requirements.txt",
            code,
        )
    else:
        LOG.info("requirements installed")
    return dict(env)


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


def build_requirements(
    env: Mapping[str, str], settings: Settings, python: str, now: Callable[[], float] = time.time
) -> int:
    """The one-shot requirements build: install requirements.txt once, for every container.

    startup.sh runs first (as for a worker: its exports, such as pip's index, apply), then
    ``pip install --prefix`` with the containers' constraints into a temporary folder of
    ``<sync root>/.openmwaa/requirements/``, which gets a complete marker and is renamed to
    the key's folder: containers see all of it or nothing. A failure writes ``<key>.failed``
    (containers then install at start, the DAG sync reports it) and touches no other build.
    Returns 0 when the key's folder is complete (or there is nothing to build), 1 if not.
    """
    data = read_requirements(os.path.join(settings.sync_root, REQUIREMENTS_KEY))
    if data is None:
        return 0
    key = requirements_key(data, env)
    builds = os.path.join(settings.sync_root, BUILDS_DIR)
    os.makedirs(builds, exist_ok=True)
    prune_builds(builds, key, now())
    versions = (settings.python_version, settings.airflow_version)
    if build_state(builds, key, *versions)[0] == "use":
        LOG.info("requirements build %s is already complete", key)
        return 0
    build_env = run_startup_script(
        os.path.join(settings.sync_root, STARTUP_SCRIPT_KEY), env, WORKER
    )
    build_env["PIP_USER"] = "false"  # the stock image's PIP_USER=true refuses --prefix
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=builds)
    snapshot = os.path.join(tmp, REQUIREMENTS_KEY)  # the bytes the key was computed from
    with open(snapshot, "wb") as f:
        f.write(data)
    own = config.requirements_have_constraints(data.decode("utf-8", "replace"))
    LOG.info("building requirements %s (limit %d s)", key, BUILD_TIMEOUT)
    code = pip_install(
        ["--prefix", tmp, "-r", snapshot],
        build_env,
        settings,
        BUILD_TIMEOUT,
        python,
        constrained=not own,
    )
    final = os.path.join(builds, key)
    if code == 0:
        marker = {"key": key, "python": versions[0], "airflow": versions[1], "at": now()}
        write_json(os.path.join(tmp, BUILD_MARKER), marker)
        with contextlib.suppress(OSError):
            os.rename(tmp, final)
    shutil.rmtree(tmp, ignore_errors=True)
    state, detail = build_state(builds, key, *versions)
    if state == "use":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(builds, f"{key}.failed"))
        LOG.info("requirements build %s complete in %.0f s", key, time.monotonic() - started)
        return 0
    error = f"pip {outcome(code)}" if code != 0 else f"cannot install {final}: {detail}"
    write_json(os.path.join(builds, f"{key}.failed"), {"key": key, "error": error, "at": now()})
    LOG.error(
        "requirements build %s failed (%s): containers install requirements.txt at start "
        "until a build succeeds; other builds are untouched",
        key,
        error,
    )
    return 1
