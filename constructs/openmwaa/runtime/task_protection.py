"""Worker-side ECS task scale-in protection: a busy Celery worker cannot be chosen for scale-in.

Runs inside the Airflow worker container (Airflow's stock image, Python 3.12): standard
library only. Two parts keep the protection in step with the worker's Airflow tasks, both
through the ECS agent's task scale-in protection endpoint
(``PUT $ECS_AGENT_URI/task-protection/v1/state``):

* :class:`ReceiptProtector`, called by Celery's ``task_received`` signal in the worker's main
  process (see :mod:`.celery_signals`) when a task message arrives, before the task runs:
  it touches the receipt marker, then turns protection on at once;
* :func:`run_monitor`, a daemon thread of the bootstrap. Every check it reads the container's
  processes and the receipt marker and decides whether the worker is busy: an Airflow task
  process runs, or a task was received less than ``receipt_grace_seconds`` ago. Busy, or still
  warming up (``warmup_seconds``): protection on, renewed before it expires. Idle for
  ``idle_checks_to_release`` checks in a row: protection off, so the autoscaler's lower
  desiredCount can stop this task. A task received while that release was in flight puts
  protection back at once. While unprotected it checks every ``watch_interval_seconds``.

A failed agent call (an HTTP error, a refusal, a timeout, a connection dropped mid-answer) is
logged and retried at the next check. The monitor also remembers that protection *may* be
on: set by the receipt handler (a busy check) or by a call whose outcome it does not know. So
once idle it releases even if its own calls failed while the worker was busy, and keeps
retrying a failed release with bounded backoff. Nothing here stops a process.

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
import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

LOG = logging.getLogger("openmwaa.task_protection")

AIRFLOW3_TASK_TITLE_PREFIX = "airflow worker --"
AIRFLOW3_SUPERVISOR_TITLE_PREFIX = "airflow supervisor:"
AIRFLOW2_TASK_TITLE_PREFIXES = ("airflow task supervisor:", "airflow task runner:")
IDLE_TITLE_SUFFIX = "<idle>"
PROTECTION_PATH = "/task-protection/v1/state"
RECEIPT_MARKER = "/tmp/openmwaa-task-received"
"""Touched by :class:`ReceiptProtector` when Celery receives a task; its mtime is read by the
monitor (both run in the worker container, in different processes)."""


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


# --- adapter -----------------------------------------------------------------------------


def read_processes(proc_root: str = "/proc") -> list[ProcessInfo]:
    """The processes under proc_root; vanished or unreadable ones are skipped."""
    found: list[ProcessInfo] = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        base = os.path.join(proc_root, entry)
        try:
            with open(os.path.join(base, "stat"), encoding="utf-8", errors="replace") as handle:
                ppid, state = parse_stat(handle.read())
            with open(os.path.join(base, "cmdline"), "rb") as handle:
                raw = handle.read()
        except (OSError, ValueError, IndexError):
            continue  # the process ended between listdir and open, or is not ours to read
        found.append(ProcessInfo(int(entry), ppid, state, cmdline_text(raw)))
    return found


def touch_marker(path: str) -> None:
    """Set the receipt marker's mtime to now (creating it)."""
    with open(path, "a"):
        pass
    os.utime(path)


def marker_age(path: str, now: float) -> float | None:
    """Seconds since the receipt marker was touched (wall clock), None if there is none."""
    try:
        return now - os.stat(path).st_mtime
    except OSError:
        return None


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
            try:
                detail = error.read().decode("utf-8", "replace")[:500]
            except (OSError, http.client.HTTPException) as read_error:
                detail = f"(answer unreadable: {type(read_error).__name__})"
            LOG.warning(
                "task protection %s failed: HTTP %s from %s: %s; retrying next check",
                what,
                error.code,
                self.url,
                detail,
            )
            return False
        except (OSError, ValueError, http.client.HTTPException) as error:
            # URLError, timeouts, bad URI, a connection dropped mid-answer (IncompleteRead)
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


class ReceiptProtector:
    """Turns protection on when Celery receives a task, before it runs.

    Called in the Celery consumer, so it is quick: it touches the marker (first, so the
    monitor cannot release from then on), then PUTs protection with a short timeout, and skips
    the call for ``receipt_grace_seconds / 2`` after a successful one (the marker keeps the
    monitor from releasing for ``receipt_grace_seconds``, so protection is still on) or 5 s
    after a failed one (the monitor, seeing the marker, protects within a second anyway).
    """

    def __init__(
        self,
        agent_uri: str,
        *,
        marker_path: str = RECEIPT_MARKER,
        rules: ProtectionRules | None = None,
        timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = AgentClient(agent_uri, timeout_seconds)
        self.marker_path = marker_path
        self.rules = rules or ProtectionRules()
        self.clock = clock
        self.quiet_until = -math.inf
        self.lock = threading.Lock()

    def on_receipt(self) -> bool:
        """Mark and protect; True if the agent was asked and confirmed."""
        try:
            touch_marker(self.marker_path)
        except OSError as error:
            LOG.warning("cannot touch %s: %s", self.marker_path, error)
        with self.lock:
            now = self.clock()
            if now < self.quiet_until:
                return False
            ok = self.agent.set_protection(True, self.rules.expires_in_minutes)
            self.quiet_until = now + (self.rules.receipt_grace_seconds / 2 if ok else 5.0)
        if ok:
            LOG.info("task received: scale-in protection on")
        return ok


def run_monitor(
    stop: threading.Event,
    *,
    agent_uri: str | None,
    interval_seconds: float = 15.0,
    proc_root: str = "/proc",
    marker_path: str = RECEIPT_MARKER,
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
            state = _check(state, now, agent, proc_root, marker_path, rules)
            delay = next_delay(state, now, rules)
        except Exception:  # the thread must outlive any surprise
            LOG.exception("task protection check failed; trying again next check")
            delay = rules.interval_seconds
        stop.wait(delay)
    LOG.info("task scale-in protection monitor stopped")


def _busy(proc_root: str, marker_path: str, rules: ProtectionRules) -> bool:
    if received_recently(marker_age(marker_path, time.time()), rules):
        return True
    try:
        return is_busy(read_processes(proc_root))
    except OSError as error:
        LOG.warning("cannot list processes under %s (%s): counting as busy", proc_root, error)
        return True


def _check(
    state: MonitorState,
    now: float,
    agent: AgentClient,
    proc_root: str,
    marker_path: str,
    rules: ProtectionRules,
) -> MonitorState:
    busy = _busy(proc_root, marker_path, rules)
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
            if _busy(proc_root, marker_path, rules):
                # A task received while the release was in flight: its own protection call
                # may have landed before our release. Protect again at once.
                LOG.info("task received during the release: task scale-in protection on")
                state = apply(state, busy, now, action, succeeded, rules)
                busy, action = True, Action.PROTECT
                succeeded = agent.set_protection(True, rules.expires_in_minutes)
    return apply(state, busy, now, action, succeeded, rules)
