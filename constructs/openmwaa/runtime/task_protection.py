"""Worker-side ECS task scale-in protection: a busy Celery worker cannot be chosen for scale-in.

Runs inside the Airflow worker container (Airflow's stock image, Python 3.12): standard
library only. The bootstrap starts :func:`run_monitor` in a daemon thread. Every check it lists
the command lines of the container's processes, decides whether an Airflow task is running
("busy") and tells the ECS agent through the task scale-in protection endpoint
(``PUT $ECS_AGENT_URI/task-protection/v1/state``):

* busy, or still warming up (a new worker is given ``warmup_seconds`` before it may be judged
  idle): protection on, renewed before it expires;
* idle for ``idle_checks_to_release`` checks in a row: protection off, so the autoscaler's
  lower desiredCount can stop this task. While unprotected the worker still takes tasks from
  the queue, so it is checked every ``watch_interval_seconds`` (1 s) instead of every
  ``interval_seconds``: a task it picks up re-protects it within about a second.

A failed agent call is logged and retried at the next check. Nothing here stops a process.

Which processes are tasks (checked against Airflow's source):

* Airflow 3 (Task SDK): the supervisor forks the task runner, which sets its process title to
  ``airflow worker -- <task instance id>`` (``setproctitle`` in
  ``airflow/sdk/execution_time/task_runner.py``); MWAA's own image counts processes whose
  command line starts with ``airflow worker --`` the same way. ``airflow worker --
  LocalExecutor: <idle>`` is an idle LocalExecutor slot, never a task.
* Airflow 2 (Celery ``execute_command``): ``airflow task supervisor: [...]`` (fork mode),
  ``airflow tasks run ...`` (subprocess mode) and the raw task ``airflow task runner: ...``.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, replace

LOG = logging.getLogger("openmwaa.task_protection")

AIRFLOW3_TASK_TITLE_PREFIX = "airflow worker --"
AIRFLOW2_TASK_TITLE_PREFIXES = ("airflow task supervisor:", "airflow task runner:")
IDLE_TITLE_SUFFIX = "<idle>"
PROTECTION_PATH = "/task-protection/v1/state"


# --- pure core ---------------------------------------------------------------------------


def cmdline_text(raw: bytes) -> str:
    """The text of a /proc/<pid>/cmdline: NUL-separated arguments joined by spaces.

    A process title set with setproctitle shows as one argument padded with NULs or spaces.
    """
    parts = [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
    return " ".join(" ".join(parts).split())


def is_task_process(cmdline: str) -> bool:
    """True if the command line (or process title) is that of a running Airflow task."""
    title = " ".join(cmdline.split())
    if title.startswith(AIRFLOW3_TASK_TITLE_PREFIX):
        return not title.endswith(IDLE_TITLE_SUFFIX)
    if title.startswith(AIRFLOW2_TASK_TITLE_PREFIXES):
        return True
    tokens = title.split(" ")
    return any(
        os.path.basename(token) == "airflow" and tokens[i + 1 : i + 3] == ["tasks", "run"]
        for i, token in enumerate(tokens)
    )


def is_busy(cmdlines: Iterable[str]) -> bool:
    """True if any of the processes is an Airflow task."""
    return any(is_task_process(line) for line in cmdlines)


@dataclass(frozen=True)
class ProtectionRules:
    interval_seconds: float = 15.0
    warmup_seconds: float = 180.0
    """A new worker counts as busy this long (loading DAGs, first poll of the queue)."""
    idle_checks_to_release: int = 2
    expires_in_minutes: int = 60
    """Protection lasts this long per call (ECS allows 1..2880); renewed while busy."""
    renew_before_seconds: float = 600.0
    """Renew when less than this is left, so a busy worker is never unprotected."""
    watch_interval_seconds: float = 1.0
    """Check interval while unprotected (idle after warm-up); backs off on failed calls."""


@dataclass(frozen=True)
class MonitorState:
    started_at: float
    protected_until: float | None = None
    """When our last successful protection ends (monotonic clock); None: not protected."""
    idle_streak: int = 0
    failures: int = 0
    """Agent calls failed in a row."""


class Action(enum.Enum):
    NONE = "none"
    PROTECT = "protect"
    RELEASE = "release"


def is_protected(state: MonitorState, now: float) -> bool:
    return state.protected_until is not None and state.protected_until > now


def wants_protection(state: MonitorState, busy: bool, now: float, rules: ProtectionRules) -> bool:
    return busy or now - state.started_at < rules.warmup_seconds


def decide(state: MonitorState, busy: bool, now: float, rules: ProtectionRules) -> Action:
    """What to ask the ECS agent for at this check."""
    if wants_protection(state, busy, now, rules):
        if not is_protected(state, now):
            return Action.PROTECT
        assert state.protected_until is not None
        if state.protected_until - now < rules.renew_before_seconds:
            return Action.PROTECT
        return Action.NONE
    idle_streak = state.idle_streak + 1
    if idle_streak >= rules.idle_checks_to_release and is_protected(state, now):
        return Action.RELEASE
    return Action.NONE


def apply(
    state: MonitorState,
    busy: bool,
    now: float,
    action: Action,
    succeeded: bool,
    rules: ProtectionRules,
) -> MonitorState:
    """The state after this check; a failed call changes nothing but the idle count."""
    idle_streak = 0 if wants_protection(state, busy, now, rules) else state.idle_streak + 1
    new = replace(state, idle_streak=idle_streak)
    if state.protected_until is not None and state.protected_until <= now:
        new = replace(new, protected_until=None)
    if action is Action.NONE:
        return new
    if not succeeded:
        return replace(new, failures=state.failures + 1)
    if action is Action.PROTECT:
        return replace(new, protected_until=now + rules.expires_in_minutes * 60.0, failures=0)
    return replace(new, protected_until=None, failures=0)


def next_delay(state: MonitorState, now: float, rules: ProtectionRules) -> float:
    """Seconds until the next check.

    Protected: ``interval_seconds``. Unprotected: ``watch_interval_seconds``, so a task picked
    up re-protects the worker fast; doubled per failed agent call, up to ``interval_seconds``.
    """
    if is_protected(state, now):
        return rules.interval_seconds
    backoff = rules.watch_interval_seconds * 2.0 ** min(state.failures, 16)
    return min(rules.interval_seconds, backoff)


# --- adapter -----------------------------------------------------------------------------


def read_cmdlines(proc_root: str = "/proc") -> list[str]:
    """Command lines of the processes under proc_root; vanished or unreadable ones skipped."""
    lines: list[str] = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, entry, "cmdline"), "rb") as handle:
                raw = handle.read()
        except OSError:
            continue  # the process ended between listdir and open, or is not ours to read
        text = cmdline_text(raw)
        if text:
            lines.append(text)
    return lines


class AgentClient:
    """The ECS agent's task scale-in protection endpoint, over urllib."""

    def __init__(self, agent_uri: str, timeout_seconds: float = 5.0) -> None:
        self.url = agent_uri.rstrip("/") + PROTECTION_PATH
        self.timeout_seconds = timeout_seconds

    def set_protection(self, enabled: bool, expires_in_minutes: int | None = None) -> bool:
        """PUT the protection state; True only if the agent confirms it. Failures are logged."""
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled and expires_in_minutes is not None:
            body["ExpiresInMinutes"] = expires_in_minutes
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        what = "enable" if enabled else "drop"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            LOG.warning(
                "task protection %s failed: HTTP %s from %s: %s; retrying next check",
                what,
                error.code,
                self.url,
                detail,
            )
            return False
        except (OSError, ValueError) as error:  # URLError, timeouts, bad URI
            LOG.warning(
                "task protection %s failed: %s: %s; retrying next check",
                what,
                type(error).__name__,
                error,
            )
            return False
        try:
            answer = json.loads(text) if text.strip() else {}
        except ValueError:
            answer = {"error": {"Message": f"not JSON: {text[:200]!r}"}}
        if not isinstance(answer, dict) or "failure" in answer or "error" in answer:
            LOG.warning(
                "task protection %s refused by the ECS agent: %s; retrying next check",
                what,
                text[:500],
            )
            return False
        return True


def run_monitor(
    stop: threading.Event,
    *,
    agent_uri: str | None,
    interval_seconds: float = 15.0,
    proc_root: str = "/proc",
    rules: ProtectionRules | None = None,
) -> None:
    """Keep the task's scale-in protection in step with its Airflow tasks until ``stop`` is set.

    ``agent_uri`` is ``$ECS_AGENT_URI``; without it (not on ECS) protection is off and this
    returns at once. Never raises: an unexpected error is logged and the next check runs.
    """
    if not agent_uri:
        LOG.info("ECS_AGENT_URI is not set: task scale-in protection monitor not started")
        return
    rules = replace(rules or ProtectionRules(), interval_seconds=interval_seconds)
    agent = AgentClient(agent_uri)
    state = MonitorState(started_at=time.monotonic())
    LOG.info(
        "task scale-in protection monitor started (check every %gs, warm-up %gs, "
        "release after %d idle checks)",
        rules.interval_seconds,
        rules.warmup_seconds,
        rules.idle_checks_to_release,
    )
    while not stop.is_set():
        now = time.monotonic()
        try:
            state = _check(state, now, agent, proc_root, rules)
            delay = next_delay(state, now, rules)
        except Exception:  # the thread must outlive any surprise
            LOG.exception("task protection check failed; trying again next check")
            delay = rules.interval_seconds
        stop.wait(delay)
    LOG.info("task scale-in protection monitor stopped")


def _check(
    state: MonitorState, now: float, agent: AgentClient, proc_root: str, rules: ProtectionRules
) -> MonitorState:
    try:
        busy = is_busy(read_cmdlines(proc_root))
    except OSError as error:
        LOG.warning("cannot list processes under %s (%s): counting as busy", proc_root, error)
        busy = True
    action = decide(state, busy, now, rules)
    succeeded = True
    if action is Action.PROTECT:
        succeeded = agent.set_protection(True, rules.expires_in_minutes)
        if succeeded and not is_protected(state, now):
            LOG.info(
                "%s: task scale-in protection on for %d min",
                "Airflow task running" if busy else "warming up",
                rules.expires_in_minutes,
            )
    elif action is Action.RELEASE:
        succeeded = agent.set_protection(False)
        if succeeded:
            LOG.info(
                "no Airflow task for %d checks: task scale-in protection dropped",
                state.idle_streak + 1,
            )
    return apply(state, busy, now, action, succeeded, rules)
