"""The entry point of every openmwaa Airflow container.

The container command unpacks this package from ``$OPENMWAA_RUNTIME`` and runs it with the
image's Python. In order, each step with a hard limit (as MWAA):

1. configure Airflow from the ECS secrets and variables (:mod:`.config`); fatal if incomplete;
2. scheduler and worker: make sure kombu can reach SQS (pycurl, only for kombu < 5.5);
3. ``startup.sh`` from the sync root, sourced in bash with ``MWAA_AIRFLOW_COMPONENT`` set,
   5 minutes at most; the variables it exports reach Airflow unless protected;
4. ``requirements.txt`` from the sync root: the folder the one-shot requirements build made
   for it (``.openmwaa/requirements/<key>``, see :func:`requirements_key`) goes first on
   ``PYTHONPATH`` and ``PATH``; while that build runs, or if it failed, they are pip-installed
   into the image's environment with the running Airflow's constraints, 9 minutes at most (a
   failure is logged, not fatal);
5. scheduler: ``airflow db migrate`` (Airflow holds a PostgreSQL advisory lock, so several
   schedulers never migrate at once); other components wait until migrations are done;
6. api-server with the FAB auth manager: create the admin user, or reset its password to the
   secret's;
7. run the component: ``exec`` into Airflow, except the worker, where this process stays the
   parent of ``airflow celery worker`` to forward SIGTERM (Celery's warm shutdown: stop
   consuming, finish running tasks) and to keep ECS task scale-in protection in step; Celery
   loads its configuration from :mod:`.celery_signals` (protection on task receipt).

A fatal error is logged and the process exits non-zero; ECS then replaces the task.

With ``OPENMWAA_COMPONENT=build-requirements`` it is the one-shot requirements build instead
(:func:`build_requirements`): startup.sh, then ``pip install --prefix`` into a temporary folder
on the sync root, renamed to its key's folder with a complete marker inside.
Standard library only: it runs inside the stock Apache Airflow image.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

from . import config
from .config import ConfigError

LOG = logging.getLogger("openmwaa.bootstrap")

STARTUP_SCRIPT_TIMEOUT = 5 * 60
REQUIREMENTS_TIMEOUT = 9 * 60
PYCURL_TIMEOUT = 5 * 60
MIGRATION_TIMEOUT = 30 * 60
ADMIN_USER_TIMEOUT = 3 * 60
ADMIN_USER_ATTEMPTS = 5
CONSTRAINTS_FETCH_TIMEOUT = 30
KILL_GRACE_SECONDS = 10.0
LOCAL_CONSTRAINTS = "<installed distributions>"
BUILD_COMPONENT = "build-requirements"
BUILD_TIMEOUT = 30 * 60
BUILDS_DIR = ".openmwaa/requirements"
BUILD_MARKER = "openmwaa-build.json"
KEEP_BUILDS = 3
KEY_VARIABLES = ("OPENMWAA_AIRFLOW_VERSION", "OPENMWAA_PYTHON_VERSION", "OPENMWAA_CONSTRAINTS_URL")


class FatalError(Exception):
    """A start-up step failed in a way Airflow cannot run with."""


class Monitor(Protocol):
    """Signature of ``task_protection.run_monitor``."""

    def __call__(self, stop: threading.Event, *, agent_uri: str | None) -> None: ...


@dataclass(frozen=True)
class Settings:
    """What the container is, from its plain environment variables and the image."""

    component: str
    airflow_version: str
    major: int
    python_version: str
    sync_root: str
    api_port: str


def read_settings(env: Mapping[str, str], installed_airflow: str | None) -> Settings:
    """Read and check the ``OPENMWAA_*`` variables. The installed Airflow wins over
    ``OPENMWAA_AIRFLOW_VERSION`` (a custom image may differ)."""
    component = env.get("OPENMWAA_COMPONENT", "")
    if component not in (*config.COMPONENTS, BUILD_COMPONENT):
        raise ConfigError(
            f"OPENMWAA_COMPONENT must be one of {', '.join(config.COMPONENTS)}"
            f" or {BUILD_COMPONENT}: {component!r}"
        )
    version = installed_airflow or env.get("OPENMWAA_AIRFLOW_VERSION", "")
    if not version:
        raise ConfigError("OPENMWAA_AIRFLOW_VERSION is not set and Airflow is not installed")
    sync_root = env.get("OPENMWAA_SYNC_ROOT", "")
    if not sync_root:
        raise ConfigError("OPENMWAA_SYNC_ROOT is not set")
    api_port = env.get("OPENMWAA_API_SERVER_PORT", str(config.API_SERVER_PORT))
    if not api_port.isdigit():
        raise ConfigError(f"OPENMWAA_API_SERVER_PORT is not a port number: {api_port!r}")
    python_version = ".".join(platform.python_version_tuple()[:2])
    return Settings(
        component=component,
        airflow_version=version,
        major=config.airflow_major(version),
        python_version=python_version,
        sync_root=sync_root,
        api_port=api_port,
    )


def kombu_needs_pycurl(kombu_version: str | None) -> bool:
    """True if this kombu's SQS transport needs pycurl (before 5.5; later ones use urllib3)."""
    if kombu_version is None:
        return False
    parts = []
    for part in kombu_version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts) < (5, 5)


def needs_admin_user(component: str, auth_manager: str, has_secret: bool) -> bool:
    """The api-server creates the admin user, when FAB is the auth manager and a secret is given."""
    return component == "api-server" and auth_manager == config.FAB_AUTH_MANAGER and has_secret


def constraint_sources(
    env: Mapping[str, str], settings: Settings, image_constraints: str | None
) -> list[str]:
    """Where to read the constraints for user requirements, in order of preference.

    ``OPENMWAA_CONSTRAINTS_URL`` set to ``none`` (or empty) means no constraints. Set to a URL
    or path: that file. Unset: the image's own constraints file, then Airflow's published
    constraints. Always last: constraints pinning what is installed.
    """
    url = env.get("OPENMWAA_CONSTRAINTS_URL")
    if url is not None and url.strip().lower() in ("", "none"):
        return []
    if url:
        return [url.strip(), LOCAL_CONSTRAINTS]
    sources = [image_constraints] if image_constraints else []
    sources.append(
        config.default_constraints_url(settings.airflow_version, settings.python_version)
    )
    sources.append(LOCAL_CONSTRAINTS)
    return sources


def parse_env_dump(raw: bytes) -> dict[str, str]:
    """Parse the output of ``env -0``."""
    result: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if b"=" not in item:
            continue
        name, _, value = item.decode("utf-8", "surrogateescape").partition("=")
        result[name] = value
    return result


def ld_preload(env: Mapping[str, str], machine: str, exists: Callable[[str], bool]) -> str | None:
    """The libstdc++ preload the stock image's entrypoint sets (apache/airflow#17546), which we
    bypass; None if already set or absent."""
    if env.get("LD_PRELOAD"):
        return None
    path = f"/usr/lib/{machine}-linux-gnu/libstdc++.so.6"
    return path if exists(path) else None


def runtime_import_root() -> str:
    """The sys.path entry this package is imported from: the zip application on ECS."""
    root = os.path.abspath(__file__)
    for _ in range(__name__.count(".") + 1):
        root = os.path.dirname(root)
    return root


def worker_celery_env(env: Mapping[str, str], root: str, package: str) -> dict[str, str]:
    """What the worker's Celery needs to load :mod:`.celery_signals`: the runtime on
    ``PYTHONPATH`` (after the user's) and ``[celery] celery_config_options`` naming it."""
    path = env.get("PYTHONPATH", "")
    return {
        "PYTHONPATH": f"{path}{os.pathsep}{root}" if path else root,
        config.env_name("celery.celery_config_options"): f"{package}.celery_signals.CELERY_CONFIG",
    }


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it (128 + signal for a signalled child)."""
    return 128 - returncode if returncode < 0 else returncode


# --- processes ---------------------------------------------------------------------------


def run(
    cmd: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    *,
    stdin_text: str | None = None,
    capture: bool = False,
) -> tuple[int | None, str]:
    """Run ``cmd`` in its own process group. Returns (exit code, or None if it was killed at
    ``timeout``; its output if ``capture``, else it goes to our stdout)."""
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env),
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        return None, ""
    return proc.returncode, out or ""


def kill_group(proc: subprocess.Popen[str], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


# --- steps -------------------------------------------------------------------------------


def run_startup_script(path: str, env: Mapping[str, str], component: str) -> dict[str, str]:
    """Source ``startup.sh`` in bash; return ``env`` with the variables it exported.

    A script that fails or runs over 5 minutes is logged and its exports are ignored.
    """
    if not os.path.isfile(path):
        LOG.info("no startup script at %s", path)
        return dict(env)
    script_env = {**env, "MWAA_AIRFLOW_COMPONENT": component}
    fd, dump = tempfile.mkstemp(prefix="openmwaa-env-")
    os.close(fd)
    try:
        LOG.info("running startup script %s (limit %d s)", path, STARTUP_SCRIPT_TIMEOUT)
        # The EXIT trap dumps the environment even if the script ends with `exit`.
        script = f'trap "env -0 > {dump}" EXIT; source "$1" 1>&2'
        code, _ = run(
            ["/bin/bash", "-c", script, "startup.sh", path], script_env, STARTUP_SCRIPT_TIMEOUT
        )
        if code is None:
            LOG.error(
                "startup script killed after %d s; its exports are ignored", STARTUP_SCRIPT_TIMEOUT
            )
            return dict(env)
        if code != 0:
            LOG.error("startup script exited with %d; its exports are ignored", code)
            return dict(env)
        with open(dump, "rb") as f:
            after = parse_env_dump(f.read())
    finally:
        os.unlink(dump)
    if not after:
        LOG.error("startup script left no environment to read; its exports are ignored")
        return dict(env)
    changes, removed, rejected = config.filter_startup_exports(script_env, after)
    for name in rejected:
        LOG.warning("startup script may not change %s: ignored", name)
    result = {**env, **changes}
    for name in removed:
        result.pop(name, None)
    LOG.info(
        "startup script done: %d variable(s) set %s, %d unset",
        len(changes),
        sorted(changes),
        len(removed),
    )
    return result


def installed_distributions() -> dict[str, str]:
    """Name -> version of every distribution the running Python sees."""
    result: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            result.setdefault(name, dist.version)
    return result


def fetch(source: str, dest: str) -> None:
    """Copy a constraints file from a path or a URL (http, https, file)."""
    if source.startswith("/"):
        shutil.copyfile(source, dest)
        return
    with (
        urllib.request.urlopen(source, timeout=CONSTRAINTS_FETCH_TIMEOUT) as response,
        open(dest, "wb") as out,
    ):
        shutil.copyfileobj(response, out)


def prepare_constraints(env: Mapping[str, str], settings: Settings, directory: str) -> str | None:
    """Write the constraints file pip should use into ``directory``; None for none."""
    dest = os.path.join(directory, "constraints.txt")
    home = env.get("AIRFLOW_USER_HOME_DIR", "")
    image_file = os.path.join(home, "constraints.txt") if home else ""
    image_constraints = image_file if image_file and os.path.isfile(image_file) else None
    for source in constraint_sources(env, settings, image_constraints):
        if source == LOCAL_CONSTRAINTS:
            with open(dest, "w") as f:
                f.write(config.local_constraints(installed_distributions()))
            LOG.info("constraints: every installed distribution pinned at its version")
            return dest
        try:
            fetch(source, dest)
        except (OSError, ValueError) as error:
            LOG.warning("cannot read constraints %s: %s", source, error)
            continue
        LOG.info("constraints: %s", source)
        return dest
    LOG.info("constraints: none (OPENMWAA_CONSTRAINTS_URL=none)")
    return None


def pip_install(
    args: Sequence[str],
    env: Mapping[str, str],
    settings: Settings,
    timeout: float,
    python: str,
    *,
    constrained: bool = True,
) -> int | None:
    """``pip install`` into the running Python's environment, with our constraints unless
    ``constrained`` is False. Returns pip's exit code, None if killed at ``timeout``."""
    cmd = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    cmd += ["--no-warn-script-location", *args]
    with tempfile.TemporaryDirectory(prefix="openmwaa-pip-") as directory:
        constraints = prepare_constraints(env, settings, directory) if constrained else None
        if constraints:
            cmd += ["-c", constraints]
        code, _ = run(cmd, env, timeout)
    return code


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
    data = read_requirements(os.path.join(settings.sync_root, "requirements.txt"))
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
    build_env = run_startup_script(os.path.join(settings.sync_root, "startup.sh"), env, "worker")
    build_env["PIP_USER"] = "false"  # the stock image's PIP_USER=true refuses --prefix
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=builds)
    snapshot = os.path.join(tmp, "requirements.txt")  # the bytes the key was computed from
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
    error = f"pip {_outcome(code)}" if code != 0 else f"cannot install {final}: {detail}"
    write_json(os.path.join(builds, f"{key}.failed"), {"key": key, "error": error, "at": now()})
    LOG.error(
        "requirements build %s failed (%s): containers install requirements.txt at start "
        "until a build succeeds; other builds are untouched",
        key,
        error,
    )
    return 1


def ensure_pycurl(env: Mapping[str, str], settings: Settings, python: str) -> None:
    """Install pycurl if this kombu's SQS transport needs it and it is missing (fatal if that
    fails: without it no task message moves)."""
    try:
        kombu_version: str | None = importlib.metadata.version("kombu")
    except importlib.metadata.PackageNotFoundError:
        kombu_version = None
    if not kombu_needs_pycurl(kombu_version):
        LOG.info("kombu %s reaches SQS without pycurl", kombu_version)
        return
    if importlib.util.find_spec("pycurl") is not None:
        LOG.info("pycurl is installed")
        return
    LOG.warning("kombu %s needs pycurl for SQS and it is missing: installing it", kombu_version)
    code = pip_install(["pycurl"], env, settings, PYCURL_TIMEOUT, python)
    if code != 0:
        raise FatalError("cannot install pycurl, which kombu needs to reach SQS")


def migrate_database(env: Mapping[str, str]) -> None:
    """``airflow db migrate`` (Airflow takes a PostgreSQL advisory lock around it)."""
    LOG.info("migrating the metadata database")
    code, _ = run(["airflow", "db", "migrate"], env, MIGRATION_TIMEOUT)
    if code != 0:
        raise FatalError(f"airflow db migrate failed ({_outcome(code)})")
    LOG.info("metadata database migrated")


def wait_for_migrations(env: Mapping[str, str]) -> None:
    """Wait until the scheduler has migrated the metadata database."""
    LOG.info("waiting for the scheduler to migrate the metadata database")
    cmd = ["airflow", "db", "check-migrations", "--migration-wait-timeout", str(MIGRATION_TIMEOUT)]
    code, _ = run(cmd, env, MIGRATION_TIMEOUT + 120)
    if code != 0:
        raise FatalError(f"the metadata database is not migrated ({_outcome(code)})")
    LOG.info("metadata database is migrated")


def ensure_admin_user(admin: config.AdminUser, env: Mapping[str, str]) -> bool:
    """Create the FAB admin user, or set its password to the secret's if it exists.

    The password goes to the CLI on stdin (its prompt falls back to stdin without a
    terminal), never on the command line. Retried: a second api-server may race us, or the
    auth tables may still be migrating. A failure is logged, not fatal.
    """
    stdin = f"{admin.password}\n{admin.password}\n"
    create = ["airflow", "users", "create", "--username", admin.username, "--role", "Admin"]
    create += ["--firstname", "Airflow", "--lastname", "Admin"]
    create += ["--email", f"{admin.username}@example.com"]
    reset = ["airflow", "users", "reset-password", "--username", admin.username]
    for attempt in range(1, ADMIN_USER_ATTEMPTS + 1):
        code, out = run(create, env, ADMIN_USER_TIMEOUT, stdin_text=stdin, capture=True)
        if code == 0 and "already exist" in out:
            code, out = run(reset, env, ADMIN_USER_TIMEOUT, stdin_text=stdin, capture=True)
            if code == 0:
                LOG.info("admin user %r exists: password set from the secret", admin.username)
                return True
        elif code == 0:
            LOG.info("admin user %r created", admin.username)
            return True
        LOG.warning(
            "admin user attempt %d/%d failed (%s): %s",
            attempt,
            ADMIN_USER_ATTEMPTS,
            _outcome(code),
            out.strip()[-2000:],
        )
        time.sleep(min(30, 5 * attempt))
    LOG.error(
        "cannot create the admin user %r: UI and API login fail until a restart", admin.username
    )
    return False


def _outcome(code: int | None) -> str:
    return "timed out" if code is None else f"exit {code}"


def supervise(
    cmd: Sequence[str],
    env: Mapping[str, str],
    monitor: Monitor | None,
    *,
    protection: bool = True,
) -> int:
    """Run the worker as our child, in its own process group, and return its exit code.

    SIGTERM and SIGINT are passed to Celery's main process only (warm shutdown: it stops
    consuming and lets running tasks finish; signalling the whole group would kill them).
    ``monitor`` (task scale-in protection) runs in a daemon thread until Celery exits, unless
    ``protection`` is False (``OPENMWAA_TASK_PROTECTION=off``, mw1.micro).
    """
    children: list[subprocess.Popen[bytes]] = []
    signals: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        LOG.info("received %s: warm shutdown of the worker", signal.Signals(signum).name)
        signals.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()
    try:
        if signals:
            LOG.info("stopped before the worker started")
            return 0
        LOG.info("starting %s", " ".join(cmd))
        proc = subprocess.Popen(list(cmd), env=dict(env), start_new_session=True)
        children.append(proc)
        if not protection:
            LOG.info(
                "task scale-in protection is off (%s=off): no autoscaler stops this task",
                config.TASK_PROTECTION_VARIABLE,
            )
        elif monitor is not None:
            agent_uri = env.get("ECS_AGENT_URI")
            threading.Thread(
                target=lambda: monitor(stop, agent_uri=agent_uri),
                name="task-protection",
                daemon=True,
            ).start()
        else:
            LOG.warning("task scale-in protection is not available in this runtime")
        returncode = proc.wait()
    finally:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    LOG.info("worker exited with %d", exit_code(returncode))
    return exit_code(returncode)


def load_monitor() -> Monitor | None:
    """``task_protection.run_monitor`` when this runtime has it."""
    try:
        from . import task_protection
    except ImportError:
        return None
    run_monitor: Monitor = task_protection.run_monitor
    return run_monitor


# --- main --------------------------------------------------------------------------------


def installed_airflow_version() -> str | None:
    """The installed apache-airflow (or apache-airflow-core) version, if any."""
    for name in ("apache-airflow", "apache-airflow-core"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def prepare(
    env: Mapping[str, str], settings: Settings, python: str
) -> tuple[list[str], dict[str, str]]:
    """Run steps 1-6; return the component's command and environment."""
    admin_secret = env.get("OPENMWAA_ADMIN_SECRET", "")
    admin = None
    if settings.component == "api-server" and admin_secret:
        admin = config.parse_admin_secret(admin_secret)
    airflow_env = config.airflow_environment(env, settings.major)
    preload = ld_preload(airflow_env, platform.machine(), os.path.exists)
    if preload:
        airflow_env["LD_PRELOAD"] = preload
    if settings.component in ("scheduler", "worker"):
        ensure_pycurl(airflow_env, settings, python)
    airflow_env = run_startup_script(
        os.path.join(settings.sync_root, "startup.sh"), airflow_env, settings.component
    )
    airflow_env = install_requirements(
        os.path.join(settings.sync_root, "requirements.txt"), airflow_env, settings, python
    )
    if settings.component == "scheduler":
        migrate_database(airflow_env)
    else:
        wait_for_migrations(airflow_env)
    auth_manager = airflow_env.get("AIRFLOW__CORE__AUTH_MANAGER", "")
    if admin is not None and needs_admin_user(settings.component, auth_manager, True):
        ensure_admin_user(admin, airflow_env)
    elif settings.component == "api-server":
        LOG.info("no admin user to create (auth manager %s)", auth_manager or "default")
    if settings.component == "worker":
        airflow_env.update(worker_celery_env(airflow_env, runtime_import_root(), __package__))
    command = config.airflow_command(
        settings.component,
        settings.major,
        settings.api_port,
        env.get(config.WORKER_QUEUE_VARIABLE, ""),
    )
    return command, airflow_env


def start(
    env: Mapping[str, str],
    *,
    python: str = sys.executable,
    execvpe: Callable[[str, list[str], dict[str, str]], NoReturn] = os.execvpe,
    monitor: Monitor | None = None,
    installed_airflow: str | None = None,
) -> int:
    """Prepare and run the component. Returns the exit code (the worker), or never returns
    (other components, which replace this process)."""
    settings = read_settings(env, installed_airflow)
    declared = env.get("OPENMWAA_AIRFLOW_VERSION")
    if declared and declared != settings.airflow_version:
        LOG.warning(
            "OPENMWAA_AIRFLOW_VERSION is %s but Airflow %s is installed: running %s",
            declared,
            settings.airflow_version,
            settings.airflow_version,
        )
    declared_python = env.get("OPENMWAA_PYTHON_VERSION")
    if declared_python and declared_python != settings.python_version:
        LOG.warning(
            "OPENMWAA_PYTHON_VERSION is %s but this is Python %s",
            declared_python,
            settings.python_version,
        )
    LOG.info(
        "openmwaa runtime: %s of environment %r, Airflow %s, Python %s",
        settings.component,
        env.get("OPENMWAA_ENVIRONMENT_NAME", ""),
        settings.airflow_version,
        platform.python_version(),
    )
    if settings.component == BUILD_COMPONENT:
        return build_requirements(env, settings, python)
    started = time.monotonic()
    command, airflow_env = prepare(env, settings, python)
    LOG.info("start-up steps done in %.0f s", time.monotonic() - started)
    if settings.component == "worker":
        return supervise(
            command, airflow_env, monitor, protection=config.task_protection_enabled(env)
        )
    LOG.info("exec %s", " ".join(command))
    for handler in logging.getLogger().handlers:
        handler.flush()
    execvpe(command[0], command, airflow_env)


def main() -> int:
    """Console entry point: configure logging, start, turn errors into an exit code."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s openmwaa-bootstrap %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    os.umask(0o002)
    try:
        return start(
            os.environ,
            monitor=load_monitor(),
            installed_airflow=installed_airflow_version(),
        )
    except ConfigError as error:
        LOG.error("fatal: configuration: %s", error)
        return 78
    except FatalError as error:
        LOG.error("fatal: %s", error)
        return 1
    except Exception:
        LOG.exception("fatal: unexpected error during start-up")
        return 1
