"""Which bucket keys are synced, and which are refused.

``classify`` maps a key to the kind of file it becomes on the mount (a file under
``dags/``, or one of the three rolling files at the bucket root); ``key_problem`` refuses a
key that is not a safe path under the mount; ``scope_problem`` combines the two.
"""

from __future__ import annotations

import enum
import re

import openmwaa_contracts as contracts

ROLLING_KEYS: tuple[str, ...] = (
    contracts.PLUGINS_KEY,
    contracts.REQUIREMENTS_KEY,
    contracts.STARTUP_SCRIPT_KEY,
)
"""The bucket-root files whose change rolls the Airflow services."""

# Temporary files and folders we create carry this prefix; a bucket key may not use it.
TEMP_PREFIX = ".openmwaa-tmp."
NAME_MAX_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_OUT_OF_SCOPE = (
    f"outside {contracts.DAGS_PREFIX} and not {contracts.PLUGINS_KEY}, "
    f"{contracts.REQUIREMENTS_KEY} or {contracts.STARTUP_SCRIPT_KEY}"
)


class KeyKind(enum.Enum):
    DAG_FILE = "dag_file"
    PLUGINS = "plugins"
    REQUIREMENTS = "requirements"
    STARTUP = "startup"


_SPECIAL_KINDS = {
    contracts.PLUGINS_KEY: KeyKind.PLUGINS,
    contracts.REQUIREMENTS_KEY: KeyKind.REQUIREMENTS,
    contracts.STARTUP_SCRIPT_KEY: KeyKind.STARTUP,
}


def key_problem(key: str) -> str | None:
    """Why ``key`` must not become a path under the mount, or None when it is safe."""
    if not key:
        return "the key is empty"
    if "\x00" in key:
        return "the key contains a NUL character"
    if _CONTROL.search(key):
        return "the key contains a control character"
    if "\\" in key:
        return "the key contains a backslash; use '/' between folders"
    if key.startswith("/"):
        return "the key is an absolute path"
    for part in key.split("/"):
        if part == "..":
            return "the key contains a '..' segment that would escape the mount"
        if part == ".":
            return "the key contains a '.' segment"
        if part == "":
            return "the key contains an empty segment ('//')"
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
            return f"a segment of the key is longer than {NAME_MAX_BYTES} bytes"
        if part.startswith(TEMP_PREFIX):
            return f"names starting with {TEMP_PREFIX!r} are reserved for temporary files"
    return None


def classify(key: str) -> KeyKind | None:
    """The kind of file ``key`` maps to, or None when the key is outside the synced set."""
    special = _SPECIAL_KINDS.get(key)
    if special is not None:
        return special
    prefix = contracts.DAGS_PREFIX
    if key.startswith(prefix) and len(key) > len(prefix) and not key.endswith("/"):
        return KeyKind.DAG_FILE
    return None


def scope_problem(key: str) -> tuple[bool, str] | None:
    """None when ``key`` is synced; otherwise (refused, reason): refused keys are hostile or
    unusable, the others are simply out of scope."""
    if key.endswith("/"):
        return False, "folder marker, nothing to write"
    problem = key_problem(key)
    if problem is not None:
        return True, problem
    if classify(key) is None:
        return False, _OUT_OF_SCOPE
    return None
