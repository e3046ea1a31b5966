"""Process supervision: child process groups, their time limits, and the worker's signals.

:func:`run` runs a start-up command in its own process group and, at its time limit, stops
the whole group (:func:`kill_group`: SIGTERM, then SIGKILL after a grace period).
:func:`supervise` keeps the worker's ``airflow celery worker`` as our child, passes SIGTERM
and SIGINT to Celery's main process only (its warm shutdown) and runs the task scale-in
protection monitor (:func:`.task_protection.run_monitor`) beside it. Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from . import contracts, task_protection

LOG = logging.getLogger("openmwaa.bootstrap")

KILL_GRACE_SECONDS = 10.0


class Monitor(Protocol):
    """Signature of ``task_protection.run_monitor``."""

    def __call__(self, stop: threading.Event, *, agent_uri: str | None) -> None: ...


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it (128 + signal for a signalled child)."""
    return 128 - returncode if returncode < 0 else returncode


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
                contracts.TASK_PROTECTION_VARIABLE,
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


def load_monitor() -> Monitor:
    """``task_protection.run_monitor``, the monitor :func:`supervise` runs for the worker."""
    run_monitor: Monitor = task_protection.run_monitor
    return run_monitor
