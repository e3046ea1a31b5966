"""When to start the one-shot requirements build, and whether the current one failed.

The build (the runtime's bootstrap in the ``build-requirements`` role, an ECS task of the
Airflow image) installs the effective requirements (requirements.txt, plus the AWS CLI unless
it names it: :func:`effective_requirements`) once into ``.openmwaa/requirements/<key>/`` on
EFS, so containers start without pip. Every environment has a key, with or without
requirements.txt. This module decides, from the files on EFS, whether the current key needs
a build; the handler starts it (``ecs:RunTask``) before the services roll
and at every reconcile, and reports ``RequirementsBuildFailed``.

Files under ``<mount>/.openmwaa/requirements/`` (the build writes the first two):

    <key>/openmwaa-build.json   complete marker, inside the folder renamed into place
    <key>.failed                the build of <key> failed: {"at", "error"}
    <key>.requested             this function started a build of <key>: {"at", "task"}

:func:`decide` is pure; :class:`BuildFiles` reads and writes those files (no symlink is
followed); :class:`RequirementsBuilds` ties them to a ``TaskRunner`` port.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import openmwaa_contracts as contracts

logger = logging.getLogger("dag_sync")

BUILDS_DIR = contracts.REQUIREMENTS_BUILDS_DIR
BUILD_MARKER = contracts.REQUIREMENTS_BUILD_MARKER
KEY_VARIABLES = contracts.REQUIREMENTS_KEY_VARIABLES
"""The build key's inputs besides the requirements, read from the environment (the
construct gives this function and the Airflow containers the same values)."""
AWS_CLI = "awscli"
"""The AWS CLI's project on PyPI, added to every environment's requirements (as the runtime's
``requirements.AWS_CLI``)."""
BUILD_STALE_SECONDS = 45 * 60
"""A requested build with no result after this long is taken as failed: the runtime's build
limit (30 minutes) plus the task's start."""
RETRY_FAILED_SECONDS = 60 * 60
"""A failed build of the same key is tried again at most this often (a PyPI outage heals;
a conflict keeps failing, and keeps being reported)."""


def requirements_key(requirements: bytes, env: Mapping[str, str]) -> str:
    """Same as the runtime's ``requirements.requirements_key`` (a unit test keeps them equal)."""
    inputs: dict[str, str | None] = {name: env.get(name) for name in KEY_VARIABLES}
    inputs["requirements"] = hashlib.sha256(requirements).hexdigest()
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:32]


def requirements_are_empty(text: str) -> bool:
    """True if a requirements file has no line other than blanks and comments."""
    return all(not line.strip() or line.strip().startswith("#") for line in text.splitlines())


def project_names(text: str) -> set[str]:
    """Same as the runtime's ``requirements.project_names`` (a unit test keeps them equal):
    the PEP 503 names of the projects a requirements file names on its own lines."""
    names: set[str] = set()
    for line in text.replace("\\\n", "").splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        match = re.match(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group()).lower())
    return names


def effective_requirements(requirements: bytes | None) -> bytes:
    """Same as the runtime's ``requirements.effective_requirements`` (a unit test keeps them
    equal): requirements.txt's bytes (nothing when missing or without a requirement), ending
    with a newline, then ``awscli`` unless the file names that project."""
    text = requirements or b""
    if requirements_are_empty(text.decode("utf-8", "replace")):
        text = b""
    elif not text.endswith(b"\n"):
        text += b"\n"
    if AWS_CLI in project_names(text.decode("utf-8", "replace")):
        return text
    return text + f"{AWS_CLI}\n".encode()


class Action(enum.Enum):
    NOTHING = "nothing"  # the build is complete
    WAIT = "wait"  # a build is running, or the failed one is retried later
    START = "start"


@dataclass(frozen=True)
class BuildStatus:
    """What EFS says about one key (times in epoch seconds)."""

    complete: bool = False
    requested_at: float | None = None
    failed_at: float | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    failed: bool
    reason: str


def decide(status: BuildStatus, now: float) -> Decision:
    """Start a build, wait, or nothing; ``failed`` when the key's build failed or stalled."""
    if status.complete:
        return Decision(Action.NOTHING, False, "build complete")
    requested, failed = status.requested_at, status.failed_at
    running = requested is not None and (failed is None or requested > failed)
    if running and requested is not None:
        if now - requested < BUILD_STALE_SECONDS:
            return Decision(Action.WAIT, False, "build running")
        return Decision(Action.START, True, "build stalled (no result): starting it again")
    if failed is not None:
        if now - failed < RETRY_FAILED_SECONDS:
            return Decision(Action.WAIT, True, "build failed: retried later")
        return Decision(Action.START, True, "build failed: trying again")
    return Decision(Action.START, False, "not built")


class BuildFiles:
    """The build files of one mount (``<mount>/.openmwaa/requirements``)."""

    def __init__(self, mount: str) -> None:
        self.mount = mount
        self.root = os.path.join(mount, BUILDS_DIR)

    def requirements(self) -> bytes | None:
        """requirements.txt's bytes; None if missing, a symlink or without a requirement."""
        try:
            fd = os.open(
                os.path.join(self.mount, contracts.REQUIREMENTS_KEY), os.O_RDONLY | os.O_NOFOLLOW
            )
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        return None if requirements_are_empty(data.decode("utf-8", "replace")) else data

    def _time(self, name: str) -> float | None:
        try:
            fd = os.open(os.path.join(self.root, name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            try:
                data = json.loads(f.read())
                return float(data["at"])
            except (ValueError, KeyError, TypeError):
                return os.fstat(f.fileno()).st_mtime

    def status(self, key: str) -> BuildStatus:
        marker = os.path.join(self.root, key, BUILD_MARKER)
        complete = os.path.isfile(marker) and not os.path.islink(os.path.join(self.root, key))
        return BuildStatus(
            complete=complete and not os.path.islink(marker),
            requested_at=self._time(f"{key}.requested"),
            failed_at=self._time(f"{key}.failed"),
        )

    def mark_requested(self, key: str, at: float, task: str) -> None:
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, f"{key}.requested")
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"at": at, "task": task}, f)
        os.replace(tmp, path)


class TaskRunner(Protocol):
    def run_build(self) -> str:
        """Start the build task; return its ARN. Raises if ECS did not start it."""
        ...


@dataclass
class BuildCheck:
    """The outcome of one check, for the log and the metric."""

    key: str
    decision: Decision | None
    started: str | None = None
    error: str | None = None

    @property
    def failed(self) -> int:
        return int(bool(self.decision and self.decision.failed))


class RequirementsBuilds:
    """Starts the build of the current effective requirements when it is needed (at most
    once per invocation; without requirements.txt too: the build installs the AWS CLI)."""

    def __init__(
        self,
        files: BuildFiles,
        runner: TaskRunner | None,
        env: Mapping[str, str],
        now: Callable[[], float],
    ) -> None:
        self.files = files
        self.runner = runner
        self.env = dict(env)
        self.now = now
        self.last: BuildCheck | None = None

    def ensure(self) -> BuildCheck:
        """Check the current key; start its build if :func:`decide` says so. Never raises
        for ECS: a build that cannot start is logged and tried again at the next check."""
        if self.last is not None and self.last.started:
            return self.last
        key = requirements_key(effective_requirements(self.files.requirements()), self.env)
        decision = decide(self.files.status(key), self.now())
        check = BuildCheck(key, decision)
        self.last = check
        if decision.action is not Action.START:
            logger.info("requirements build %s: %s", key, decision.reason)
            return check
        if self.runner is None:
            logger.info("requirements build %s: %s; no build task configured", key, decision.reason)
            return check
        try:
            check.started = self.runner.run_build()
        except Exception as exc:  # reported; tried again at the next check
            check.error = f"{type(exc).__name__}: {exc}"
            logger.error("requirements build %s: cannot start the build task: %s", key, exc)
            return check
        try:
            self.files.mark_requested(key, self.now(), check.started)
        except OSError as exc:  # the next check may start a second build: harmless
            logger.error("requirements build %s: cannot record the request: %s", key, exc)
        logger.info("requirements build %s: %s: started %s", key, decision.reason, check.started)
        return check


class Roller(Protocol):
    def roll(self) -> list[str]: ...


class BuildFirstRoller:
    """``ports.Roller`` that starts the requirements build, when needed, before it rolls the
    services: the new tasks then find the build running or done (they install at start
    only until it completes)."""

    def __init__(self, roller: Roller, builds: RequirementsBuilds) -> None:
        self.roller = roller
        self.builds = builds

    def roll(self) -> list[str]:
        self.builds.ensure()
        return self.roller.roll()
