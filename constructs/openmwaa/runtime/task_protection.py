"""Worker-side ECS task scale-in protection: a busy Celery worker cannot be chosen for scale-in.

Runs inside the Airflow worker container (Airflow's stock image, Python 3.12): standard
library only. This is the I/O side (/proc, the receipt marker, the clock, the ECS agent);
what counts as busy and what each check does is decided by :mod:`.protection_policy`. Two
parts keep the protection in step with the worker's Airflow tasks, both through the ECS
agent's task scale-in protection endpoint (``PUT $ECS_AGENT_URI/task-protection/v1/state``):

* :class:`ReceiptProtector`, called by Celery's ``task_received`` signal in the worker's main
  process (see :mod:`.celery_signals`) when a task message arrives, before the task runs:
  it touches the receipt marker, then turns protection on at once;
* :func:`run_monitor`, a daemon thread of the bootstrap. Every check it reads the container's
  processes and the receipt marker, asks the policy whether the worker is busy and what to
  ask the agent for (protect, renew, release), and waits as long as the policy says. A task
  received while a release was in flight puts protection back at once.

A failed agent call (an HTTP error, a refusal, a timeout, a connection dropped mid-answer) is
logged and retried at the next check; a failed release is retried with bounded backoff.
Nothing here stops a process.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace

from .protection_policy import (
    Action,
    MonitorState,
    ProcessInfo,
    ProtectionRules,
    apply,
    cmdline_text,
    decide,
    is_busy,
    is_protected,
    next_delay,
    parse_stat,
    received_recently,
)

LOG = logging.getLogger("openmwaa.task_protection")

PROTECTION_PATH = "/task-protection/v1/state"
RECEIPT_MARKER = "/tmp/openmwaa-task-received"
"""Touched by :class:`ReceiptProtector` when Celery receives a task; its mtime is read by the
monitor (both run in the worker container, in different processes)."""


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


def touch_marker(path: str, now: float) -> None:
    """Set the receipt marker's mtime to ``now`` (wall clock), creating it."""
    with open(path, "a"):
        pass
    os.utime(path, (now, now))


def marker_age(path: str, now: float) -> float | None:
    """Seconds since the receipt marker was touched (wall clock), None if there is none."""
    try:
        return now - os.stat(path).st_mtime
    except OSError:
        return None


class Clock:
    """The time the protection code reads and waits on: monotonic for its rules, the wall
    clock for the receipt marker's mtime (shared by two processes). Tests pass a fake one."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds`` between two checks, or until ``stop`` is set."""
        stop.wait(seconds)


REAL_CLOCK = Clock()


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
        clock: Clock = REAL_CLOCK,
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
            touch_marker(self.marker_path, self.clock.time())
        except OSError as error:
            LOG.warning("cannot touch %s: %s", self.marker_path, error)
        with self.lock:
            now = self.clock.monotonic()
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
    clock: Clock = REAL_CLOCK,
) -> None:
    """Keep the task's scale-in protection in step with its Airflow tasks until ``stop`` is set.

    ``agent_uri`` is ``$ECS_AGENT_URI``; without it (not on ECS) protection is off and this
    returns at once. Never raises: an unexpected error is logged and the next check runs.
    ``clock`` tells the time and waits between checks.
    """
    if not agent_uri:
        LOG.info("ECS_AGENT_URI is not set: task scale-in protection monitor not started")
        return
    rules = replace(rules or ProtectionRules(), interval_seconds=interval_seconds)
    agent = AgentClient(agent_uri)
    state = MonitorState(started_at=clock.monotonic())
    LOG.info(
        "task scale-in protection monitor started (check every %gs, warm-up %gs, "
        "release after %d idle checks)",
        rules.interval_seconds,
        rules.warmup_seconds,
        rules.idle_checks_to_release,
    )
    while not stop.is_set():
        now = clock.monotonic()
        try:
            state = _check(state, now, agent, proc_root, marker_path, rules, clock)
            delay = next_delay(state, now, rules)
        except Exception:  # the thread must outlive any surprise
            LOG.exception("task protection check failed; trying again next check")
            delay = rules.interval_seconds
        clock.wait(stop, delay)
    LOG.info("task scale-in protection monitor stopped")


def _busy(proc_root: str, marker_path: str, rules: ProtectionRules, clock: Clock) -> bool:
    if received_recently(marker_age(marker_path, clock.time()), rules):
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
    clock: Clock,
) -> MonitorState:
    busy = _busy(proc_root, marker_path, rules, clock)
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
            if _busy(proc_root, marker_path, rules, clock):
                # A task received while the release was in flight: its own protection call
                # may have landed before our release. Protect again at once.
                LOG.info("task received during the release: task scale-in protection on")
                state = apply(state, busy, now, action, succeeded, rules)
                busy, action = True, Action.PROTECT
                succeeded = agent.set_protection(True, rules.expires_in_minutes)
    return apply(state, busy, now, action, succeeded, rules)
