"""When a worker's ECS task needs scale-in protection: busy detection and the monitor's rules.

Pure (no I/O): it classifies processes read by :mod:`.task_protection`, which runs the checks
and calls the ECS agent, and decides what each check asks the agent for.

The worker is busy when an Airflow task process runs (:func:`is_busy`), or a task was
received less than ``receipt_grace_seconds`` ago (:func:`received_recently`). Busy, or still
warming up (``warmup_seconds``): protection on, renewed before it expires. Idle for
``idle_checks_to_release`` checks in a row: protection off, so the autoscaler's lower
desiredCount can stop this task. While unprotected, a check every ``watch_interval_seconds``,
doubled per failed agent call up to ``interval_seconds``. ``maybe_protected`` remembers that
protection *may* be on (a busy check: the receipt handler may have protected the worker, or a
call whose outcome is unknown), so an idle worker is released even if its own calls failed
while it was busy.

Which processes are tasks (observed on Airflow 3.3.2 and checked against Airflow's source):

* Airflow 3: the Celery pool process that runs a task retitles itself
  ``airflow supervisor: <task instance id>`` and forks the task runner, whose title becomes
  ``airflow worker -- <task instance id>`` once it has its start-up details (about 4 s later).
  The pool process keeps the supervisor title after the task ends, so a supervisor counts only
  while it has a live (not zombie) child. ``airflow worker -- LocalExecutor: <idle>`` is an
  idle LocalExecutor slot, never a task.
* Airflow 2 (Celery ``execute_command``): ``airflow task supervisor: [...]`` (a forked child
  that exits with the task), ``airflow tasks run ...`` (subprocess mode) and the raw task
  ``airflow task runner: ...``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

AIRFLOW3_TASK_TITLE_PREFIX = "airflow worker --"
AIRFLOW3_SUPERVISOR_TITLE_PREFIX = "airflow supervisor:"
AIRFLOW2_TASK_TITLE_PREFIXES = ("airflow task supervisor:", "airflow task runner:")
IDLE_TITLE_SUFFIX = "<idle>"


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


@dataclass(frozen=True)
class ProcessInfo:
    """One process of the container, from ``/proc/<pid>/stat`` and ``cmdline``."""

    pid: int
    ppid: int
    state: str
    """One letter: R, S, D, ..., Z (zombie: ended, not yet reaped)."""
    cmdline: str


def parse_stat(text: str) -> tuple[int, str]:
    """(ppid, state) from the text of ``/proc/<pid>/stat``; the command name in parentheses
    may hold spaces and parentheses, so fields are counted after its last ``)``."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def is_supervisor(cmdline: str) -> bool:
    """True for the title of an Airflow 3 task supervisor (a Celery pool process)."""
    return " ".join(cmdline.split()).startswith(AIRFLOW3_SUPERVISOR_TITLE_PREFIX)


def is_busy(processes: Iterable[ProcessInfo]) -> bool:
    """True if one of the processes is an Airflow task: a task process (see
    :func:`is_task_process`), or an Airflow 3 supervisor with a live child (its task runner)."""
    live = [p for p in processes if p.state not in ("Z", "X")]
    parents = {p.ppid for p in live}
    return any(
        is_task_process(p.cmdline) or (is_supervisor(p.cmdline) and p.pid in parents) for p in live
    )


def received_recently(age: float | None, rules: ProtectionRules) -> bool:
    """True if the receipt marker (``age`` seconds old, None if absent) says a task was received
    less than ``receipt_grace_seconds`` ago (a marker from the future counts, within as much)."""
    return age is not None and abs(age) < rules.receipt_grace_seconds


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
    receipt_grace_seconds: float = 60.0
    """A task received this recently counts as running (it may not show in /proc yet)."""


@dataclass(frozen=True)
class MonitorState:
    started_at: float
    protected_until: float | None = None
    """When our last successful protection ends (monotonic clock); None: not protected."""
    idle_streak: int = 0
    failures: int = 0
    """Agent calls failed in a row."""
    maybe_protected: bool = False
    """Protection may be on: the worker was busy or warming up since the last successful
    release (the receipt handler may have protected it, or a call of ours whose outcome is
    unknown). Cleared only by a successful release, so an idle worker is always released."""


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
    if idle_streak >= rules.idle_checks_to_release and (
        state.maybe_protected or is_protected(state, now)
    ):
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
    """The state after this check; a failed call changes nothing but the idle count, the
    failure count and ``maybe_protected`` (a busy check sets it: protection may be on)."""
    wanted = wants_protection(state, busy, now, rules)
    idle_streak = 0 if wanted else state.idle_streak + 1
    new = replace(state, idle_streak=idle_streak, maybe_protected=state.maybe_protected or wanted)
    if state.protected_until is not None and state.protected_until <= now:
        new = replace(new, protected_until=None)
    if action is Action.NONE:
        return new
    if not succeeded:
        return replace(new, failures=state.failures + 1)
    if action is Action.PROTECT:
        return replace(
            new,
            protected_until=now + rules.expires_in_minutes * 60.0,
            failures=0,
            maybe_protected=True,
        )
    return replace(new, protected_until=None, failures=0, maybe_protected=False)


def next_delay(state: MonitorState, now: float, rules: ProtectionRules) -> float:
    """Seconds until the next check.

    Protected: ``interval_seconds``. Unprotected: ``watch_interval_seconds``, so a task picked
    up re-protects the worker fast; doubled per failed agent call (a failed protect or
    release), up to ``interval_seconds``.
    """
    if is_protected(state, now):
        return rules.interval_seconds
    backoff = rules.watch_interval_seconds * 2.0 ** min(state.failures, 16)
    return min(rules.interval_seconds, backoff)
