"""The start-up steps every Airflow container runs before its component (see :mod:`.bootstrap`).

What the container is (:func:`read_settings`), kombu's pycurl, ``startup.sh``, pip with the
running Airflow's constraints (:func:`pip_install`, also used by :mod:`.requirements`), the
metadata database's migrations (the scheduler's gated by :mod:`.upgrade_gate`), the sign-in
(:func:`configure_sign_in`); the FAB users are in :mod:`.machine_users`. Each step has a hard
limit, as in MWAA; a step Airflow cannot run without raises :class:`FatalError`. Standard
library only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import config, contracts, sign_in, upgrade_gate
from .config import ConfigError
from .contracts import (
    API_SERVER,
    API_SERVER_PORT,
    BUILD_REQUIREMENTS,
    COMPONENTS,
    STARTUP_SCRIPT_KEY,
)
from .supervisor import run

LOG = logging.getLogger("openmwaa.bootstrap")

STARTUP_SCRIPT_TIMEOUT = 5 * 60
PYCURL_TIMEOUT = 5 * 60
MIGRATION_TIMEOUT = 30 * 60
CHECK_MIGRATIONS_TIMEOUT = 5 * 60
SAML_CHECK_TIMEOUT = 60
AVP_SCHEMA_TIMEOUT = 2 * 60
CONSTRAINTS_FETCH_TIMEOUT = 30
LOCAL_CONSTRAINTS = "<installed distributions>"
BUILD_COMPONENT = BUILD_REQUIREMENTS


class FatalError(Exception):
    """A start-up step failed in a way Airflow cannot run with."""


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
    component = env.get(contracts.COMPONENT_VARIABLE, "")
    if component not in (*COMPONENTS, BUILD_COMPONENT):
        raise ConfigError(
            f"OPENMWAA_COMPONENT must be one of {', '.join(COMPONENTS)}"
            f" or {BUILD_COMPONENT}: {component!r}"
        )
    version = installed_airflow or env.get(contracts.AIRFLOW_VERSION_VARIABLE, "")
    if not version:
        raise ConfigError("OPENMWAA_AIRFLOW_VERSION is not set and Airflow is not installed")
    sync_root = env.get(contracts.SYNC_ROOT_VARIABLE, "")
    if not sync_root:
        raise ConfigError("OPENMWAA_SYNC_ROOT is not set")
    api_port = env.get(contracts.API_SERVER_PORT_VARIABLE, str(API_SERVER_PORT))
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
    return component == API_SERVER and auth_manager == config.FAB_AUTH_MANAGER and has_secret


def constraint_sources(
    env: Mapping[str, str], settings: Settings, image_constraints: str | None
) -> list[str]:
    """Where to read the constraints for user requirements, in order of preference.

    ``OPENMWAA_CONSTRAINTS_URL`` set to ``none`` (or empty) means no constraints. Set to a URL
    or path: that file. Unset: the image's own constraints file, then Airflow's published
    constraints. Always last: constraints pinning what is installed.
    """
    url = env.get(contracts.CONSTRAINTS_URL_VARIABLE)
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


def run_startup_script(path: str, env: Mapping[str, str], component: str) -> dict[str, str]:
    """Source ``startup.sh`` in bash; return ``env`` with the variables it exported.

    A script that fails or runs over 5 minutes is logged and its exports are ignored.
    """
    if not os.path.isfile(path):
        LOG.info("no startup script at %s", path)
        return dict(env)
    script_env = {"MWAA_AIRFLOW_COMPONENT": component, **env}
    fd, dump = tempfile.mkstemp(prefix="openmwaa-env-")
    os.close(fd)
    try:
        LOG.info("running startup script %s (limit %d s)", path, STARTUP_SCRIPT_TIMEOUT)
        # The EXIT trap dumps the environment even if the script ends with `exit`.
        script = f'trap "env -0 > {dump}" EXIT; source "$1" 1>&2'
        code, _ = run(
            ["/bin/bash", "-c", script, STARTUP_SCRIPT_KEY, path],
            script_env,
            STARTUP_SCRIPT_TIMEOUT,
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
    from .package_index import PackageIndexError, PipIndex

    with PipIndex() as index:
        try:
            pip_env = index.environment("", env)
        except PackageIndexError as error:
            message = f"cannot install pycurl, which kombu needs to reach SQS: {error}"
            raise FatalError(message) from None
        code = pip_install(["pycurl"], pip_env, settings, PYCURL_TIMEOUT, python)
        if code != 0:
            index.report_failure()
            raise FatalError("cannot install pycurl, which kombu needs to reach SQS")


def at_migration_head(env: Mapping[str, str]) -> tuple[bool, str]:
    """``airflow db check-migrations`` once: (at this Airflow's head, its output)."""
    check = ["airflow", "db", "check-migrations", "--migration-wait-timeout", "1"]
    code, out = run(check, env, CHECK_MIGRATIONS_TIMEOUT, capture=True)
    if code == 0:
        LOG.info("metadata database already at this Airflow's migration head; nothing to migrate")
    return code == 0, out


def migrate_database(env: Mapping[str, str], airflow_version: str) -> None:
    """Migrate the metadata database once, and only when it is behind this Airflow.

    At this Airflow's head, nothing to do (every restart, every scheduler but the first).
    Behind: wait until no older component is alive (:mod:`.upgrade_gate`); then, under the
    schedulers' lock, check again and ``airflow db migrate`` (Airflow holds its own lock
    inside). Fatal at once for a database a newer Airflow migrated (a rollback).
    """
    done, out = at_migration_head(env)
    if done:
        return
    heads = [line for line in out.splitlines() if "Head(s)" in line]
    if not heads:
        raise FatalError(f"airflow db check-migrations failed: {out.strip()[-500:]}")
    LOG.info("the metadata database needs a migration: %s", heads[-1][-500:])
    known = upgrade_gate.airflow_revisions()
    if not known:
        LOG.warning("cannot read this Airflow's migration files: no downgrade guard")
    gate = upgrade_gate.Gate(airflow_version, upgrade_gate.source_heads(out), known)
    connect = upgrade_gate.connector(env)
    verdict, message = upgrade_gate.wait(gate, lambda: upgrade_gate.observe(connect), LOG.info)
    if verdict is upgrade_gate.Verdict.FAIL:
        raise FatalError(message)
    LOG.info("%s: taking the schedulers' migration lock", message)
    holder = upgrade_gate.lock(connect, MIGRATION_TIMEOUT + 300)
    try:
        if at_migration_head(env)[0]:
            return
        LOG.info("migrating the metadata database")
        code, _ = run(["airflow", "db", "migrate"], env, MIGRATION_TIMEOUT)
    finally:
        holder.close()
    if code != 0:
        raise FatalError(f"airflow db migrate failed ({outcome(code)})")
    LOG.info("metadata database migrated")


def wait_for_migrations(env: Mapping[str, str]) -> None:
    """Wait until the scheduler has migrated the metadata database."""
    LOG.info("waiting for the scheduler to migrate the metadata database")
    cmd = ["airflow", "db", "check-migrations", "--migration-wait-timeout", str(MIGRATION_TIMEOUT)]
    code, _ = run(cmd, env, MIGRATION_TIMEOUT + 120)
    if code != 0:
        raise FatalError(
            f"the metadata database is not at this Airflow's migration head ({outcome(code)}):"
            " in an upgrade the scheduler migrates once older components stopped, or the"
            " database belongs to another Airflow version (see the scheduler's log)"
        )
    LOG.info("metadata database is migrated")


def outcome(code: int | None) -> str:
    """A step's exit code for a log line: ``timed out`` (None) or ``exit <code>``."""
    return "timed out" if code is None else f"exit {code}"


def with_python_path(env: Mapping[str, str], root: str) -> str:
    """``PYTHONPATH`` of ``env`` with ``root`` (the runtime zip) after the user's entries."""
    path = env.get("PYTHONPATH", "")
    return f"{path}{os.pathsep}{root}" if path else root


def configure_sign_in(
    settings: Mapping[str, Any],
    env: Mapping[str, str],
    major: int,
    python: str,
    root: str,
    package: str,
) -> dict[str, str]:
    """The api-server's sign-in (:mod:`.sign_in`): write ``$AIRFLOW_HOME/webserver_config.py``
    and return ``env`` with its options, the runtime importable as ``package`` when that file
    needs it. ``identity_center`` fails at once (:class:`.config.ConfigError`) unless
    python3-saml imports, which the stock image lacks, then writes the amazon provider's
    schema into the Verified Permissions policy store (a failure is logged, not fatal)."""
    home = env.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    path = os.path.join(home, sign_in.CONFIG_FILE)
    options, text = sign_in.sign_in_setup(settings, major, path, package)
    result = {**env, **{config.env_name(k): v for k, v in options.items()}}
    if text is not None:
        try:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            raise FatalError(f"cannot write {path}: {error}") from None
        result["PYTHONPATH"] = with_python_path(result, root)
    if settings["method"] == "identity_center":
        saml = [python, "-c", "import onelogin.saml2.auth"]
        code, _ = run(saml, result, SAML_CHECK_TIMEOUT, capture=True)
        if code != 0:
            raise ConfigError(
                f"the identity_center sign-in needs python3-saml ({outcome(code)}): add the"
                f" line {sign_in.SAML_REQUIREMENT} to requirements.txt"
            )
        # The construct's store starts with a minimal schema; the provider writes its own.
        store = settings["policy_store_id"]
        update = ["airflow", "aws-auth-manager", "update-avp-schema", "--policy-store-id", store]
        code, _ = run(update, result, AVP_SCHEMA_TIMEOUT)
        if code != 0:
            LOG.warning("the policy store's schema was not updated (%s)", outcome(code))
    LOG.info("sign-in: %s, options %s", settings["method"], sorted(options))
    return result
