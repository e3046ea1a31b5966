"""Worker-side ECS task scale-in protection: busy detection, rules, and the agent adapter.

The adapter is tested against a fake /proc tree and a local HTTP server standing in for the
ECS agent's task-protection endpoint; the monitor runs in the test's thread on a fake clock
(time moves only when it waits between checks), so no test sleeps or depends on timing.
The Airflow 3 process titles are the ones read from /proc of a real Airflow 3.3.2 Celery
worker (tests/e2e/test_autoscaler_e2e.py checks the detection against a live worker too).
"""

from __future__ import annotations

import ast
import logging
import os
import sys
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pytest

from openmwaa.runtime import protection_policy as policy
from openmwaa.runtime import task_protection as tp
from openmwaa.runtime.protection_policy import Action, MonitorState, ProtectionRules
from tests.ecs_agent_stub import FakeEcsAgent

RULES = ProtectionRules()

TI_ID = b"01a21019-339e-7ad9-9e00-8ee518e316d2"
PAD = b"\x00" * 40
# Observed on Airflow 3.3.2 (Celery provider 3.26, prefork pool): the pool process running a
# task is retitled "airflow supervisor: <ti id>" (and keeps that title after the task), its
# forked task runner becomes "airflow worker -- <ti id>".
AIRFLOW3_TASK = b"airflow worker -- " + TI_ID + PAD
AIRFLOW3_SUPERVISOR = b"airflow supervisor: " + TI_ID + PAD
CELERY3_MAIN = b"[celeryd: celery@vm:MainProcess] -active- (celery worker)" + PAD
CELERY3_POOL = b"[celeryd: celery@vm:ForkPoolWorker-1]" + PAD
CELERY3_CLI = (
    b"/home/airflow/.local/bin/python\x00/home/airflow/.local/bin/airflow\x00celery\x00worker\x00"
)
BOOTSTRAP_PYZ = b"python\x00/opt/openmwaa/runtime.pyz\x00"
DUMB_INIT = b"/usr/bin/dumb-init\x00--\x00python\x00/opt/openmwaa/runtime.pyz\x00"
AIRFLOW2_SUPERVISOR = (
    b"airflow task supervisor: ['airflow', 'tasks', 'run', 'etl', 'load', "
    b"'scheduled__2025-01-01T00:00:00+00:00', '--local', '--subdir', 'DAGS_FOLDER/etl.py']\x00"
)
AIRFLOW2_RUNNER = b"airflow task runner: etl load scheduled__2025-01-01T00:00:00+00:00 42\x00"
AIRFLOW2_SUBPROCESS = (
    b"/usr/local/bin/python\x00/home/airflow/.local/bin/airflow\x00tasks\x00run\x00etl\x00"
    b"load\x00scheduled__2025-01-01\x00--local\x00"
)
CELERY_MAIN = b"/usr/local/bin/python\x00/home/airflow/.local/bin/airflow\x00celery\x00worker\x00"
CELERY_POOL = b"[celeryd: celery@ip-10-0-1-5:ForkPoolWorker-3]\x00"
SERVE_LOGS = b"airflow serve-logs" + PAD
BOOTSTRAP = b"python\x00-m\x00openmwaa.runtime.bootstrap\x00worker\x00"


# --- busy detection --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [AIRFLOW3_TASK, AIRFLOW2_SUPERVISOR, AIRFLOW2_RUNNER, AIRFLOW2_SUBPROCESS],
    ids=["airflow3-task-runner", "airflow2-supervisor", "airflow2-runner", "airflow2-subprocess"],
)
def test_is_task_process_recognises_airflow_task_processes(raw):
    assert policy.is_task_process(policy.cmdline_text(raw))


@pytest.mark.parametrize(
    "raw",
    [
        CELERY_MAIN,
        CELERY_POOL,
        CELERY3_MAIN,
        CELERY3_POOL,
        CELERY3_CLI,
        SERVE_LOGS,
        BOOTSTRAP,
        BOOTSTRAP_PYZ,
        DUMB_INIT,
        AIRFLOW3_SUPERVISOR,
        b"airflow worker -- LocalExecutor: <idle>\x00",
        b"bash\x00-c\x00echo airflow tasks list\x00",
        b"",
    ],
    ids=[
        "celery-main",
        "celery-pool",
        "celery3-main",
        "celery3-pool",
        "celery3-cli",
        "serve-logs",
        "bootstrap",
        "bootstrap-pyz",
        "dumb-init",
        "supervisor-title-alone",
        "idle-slot",
        "other",
        "empty",
    ],
)
def test_is_task_process_ignores_other_processes(raw):
    assert not policy.is_task_process(policy.cmdline_text(raw))


def test_is_task_process_accepts_python_dash_m_airflow():
    assert policy.is_task_process("python -m airflow tasks run etl load 2025-01-01 --raw")


def test_cmdline_text_joins_arguments_and_strips_title_padding():
    assert policy.cmdline_text(b"a\x00b c\x00\x00") == "a b c"
    assert policy.cmdline_text(b"airflow worker -- x" + b" " * 40) == "airflow worker -- x"


def pinfo(pid: int, ppid: int, raw: bytes, state: str = "S") -> policy.ProcessInfo:
    return policy.ProcessInfo(pid, ppid, state, policy.cmdline_text(raw))


def idle_worker() -> list[policy.ProcessInfo]:
    """An idle Airflow 3.3.2 worker container, as read from /proc."""
    return [
        pinfo(1, 0, DUMB_INIT),
        pinfo(7, 1, BOOTSTRAP_PYZ),
        pinfo(8, 7, CELERY3_MAIN),
        pinfo(30, 8, SERVE_LOGS),
        pinfo(31, 8, CELERY3_CLI),
        *(pinfo(40 + i, 8, CELERY3_POOL.replace(b"-1]", f"-{i}]".encode())) for i in range(5)),
    ]


def test_an_idle_airflow3_worker_is_not_busy():
    assert not policy.is_busy(idle_worker())


def test_a_supervisor_that_has_forked_its_task_runner_is_busy():
    # The first seconds of a task: the runner is forked with its parent's title.
    processes = idle_worker()
    processes[5] = pinfo(42, 8, AIRFLOW3_SUPERVISOR)
    processes.append(pinfo(60, 42, AIRFLOW3_SUPERVISOR))
    assert policy.is_busy(processes)


def test_a_running_airflow3_task_is_busy():
    processes = idle_worker()
    processes[5] = pinfo(42, 8, AIRFLOW3_SUPERVISOR)
    processes.append(pinfo(60, 42, AIRFLOW3_TASK))
    assert policy.is_busy(processes)


def test_the_title_a_pool_process_keeps_after_its_task_is_not_busy():
    processes = idle_worker()
    processes[5] = pinfo(42, 8, AIRFLOW3_SUPERVISOR)
    assert not policy.is_busy(processes)
    processes.append(pinfo(60, 42, b"", state="Z"))  # the runner, ended, not yet reaped
    assert not policy.is_busy(processes)


def test_a_task_runner_alone_is_busy():
    assert policy.is_busy([pinfo(60, 1, AIRFLOW3_TASK)])
    assert not policy.is_busy([pinfo(60, 1, AIRFLOW3_TASK, state="Z")])


def test_parse_stat_reads_ppid_and_state_after_the_command_name():
    assert policy.parse_stat("42 (airflow) S 8 42 42 0 -1 4194560 ...") == (8, "S")
    assert policy.parse_stat("60 (a) b) (c) Z 42 1 1 0") == (42, "Z")


def test_received_recently_honours_the_grace_period():
    assert policy.received_recently(0.0, RULES)
    assert policy.received_recently(RULES.receipt_grace_seconds - 1, RULES)
    assert not policy.received_recently(RULES.receipt_grace_seconds, RULES)
    assert not policy.received_recently(None, RULES)
    assert policy.received_recently(-1.0, RULES)  # clocks of two processes may differ slightly


# --- rules -----------------------------------------------------------------------------


def state(**kwargs: float | int | None) -> MonitorState:
    return MonitorState(started_at=0.0, **kwargs)  # type: ignore[arg-type]


def test_decide_protects_a_new_worker_during_warm_up():
    assert policy.decide(state(), busy=False, now=10, rules=RULES) is Action.PROTECT


def test_decide_protects_a_busy_worker():
    assert policy.decide(state(), busy=True, now=1000, rules=RULES) is Action.PROTECT


def test_decide_does_not_repeat_a_fresh_protection():
    s = state(protected_until=1000 + 3600)
    assert policy.decide(s, busy=True, now=1000, rules=RULES) is Action.NONE


def test_decide_renews_protection_before_it_expires():
    s = state(protected_until=1000 + RULES.renew_before_seconds - 1)
    assert policy.decide(s, busy=True, now=1000, rules=RULES) is Action.PROTECT


def test_decide_needs_two_idle_checks_in_a_row_to_release():
    s = state(protected_until=5000)
    now = RULES.warmup_seconds + 1
    assert policy.decide(s, busy=False, now=now, rules=RULES) is Action.NONE
    s = policy.apply(s, False, now, Action.NONE, True, RULES)
    assert policy.decide(s, busy=False, now=now + 15, rules=RULES) is Action.RELEASE


def test_a_busy_check_resets_the_idle_count():
    s = state(protected_until=5000, idle_streak=1)
    s = policy.apply(s, True, 500, Action.NONE, True, RULES)
    assert s.idle_streak == 0
    assert policy.decide(s, busy=False, now=515, rules=RULES) is Action.NONE


def test_warm_up_counts_as_busy_so_idle_checks_start_after_it():
    s = state(protected_until=5000)
    assert RULES.warmup_seconds >= 30
    for now in range(0, int(RULES.warmup_seconds), 15):
        assert policy.decide(s, busy=False, now=now, rules=RULES) is Action.NONE
        s = policy.apply(s, False, now, Action.NONE, True, RULES)
    assert s.idle_streak == 0


def test_decide_does_not_release_an_unprotected_worker():
    s = state(idle_streak=5)
    assert policy.decide(s, busy=False, now=1000, rules=RULES) is Action.NONE


def test_a_failed_call_keeps_the_state_so_the_next_check_retries():
    s = state()
    after = policy.apply(s, True, 1000, Action.PROTECT, False, RULES)
    assert after.protected_until is None
    assert policy.decide(after, busy=True, now=1015, rules=RULES) is Action.PROTECT
    protected = state(protected_until=5000, idle_streak=1)
    after = policy.apply(protected, False, 1000, Action.RELEASE, False, RULES)
    assert policy.decide(after, busy=False, now=1015, rules=RULES) is Action.RELEASE


def test_protection_set_on_receipt_is_released_when_idle_though_the_monitor_calls_failed():
    # The receipt handler protected the worker; every monitor call failed while it was busy.
    now = RULES.warmup_seconds + 100
    s = state()
    assert policy.decide(s, busy=True, now=now, rules=RULES) is Action.PROTECT
    s = policy.apply(s, True, now, Action.PROTECT, False, RULES)
    assert s.protected_until is None and s.maybe_protected
    s = policy.apply(s, False, now + 1, policy.decide(s, False, now + 1, RULES), True, RULES)
    assert policy.decide(s, busy=False, now=now + 2, rules=RULES) is Action.RELEASE


def test_a_failed_release_keeps_trying_with_bounded_backoff():
    now = RULES.warmup_seconds + 100
    s = state(maybe_protected=True, idle_streak=1)
    delays = []
    for _ in range(8):
        assert policy.decide(s, busy=False, now=now, rules=RULES) is Action.RELEASE
        s = policy.apply(s, False, now, Action.RELEASE, False, RULES)
        delays.append(policy.next_delay(s, now, RULES))
        now += delays[-1]
    assert delays == sorted(delays) and delays[0] < delays[-1] == RULES.interval_seconds
    s = policy.apply(s, False, now, Action.RELEASE, True, RULES)
    assert not s.maybe_protected and s.failures == 0
    assert policy.decide(s, busy=False, now=now + 1, rules=RULES) is Action.NONE


def test_a_busy_check_means_protection_may_be_on():
    # busy from the receipt marker: the receipt handler may have protected the worker
    s = policy.apply(state(), True, RULES.warmup_seconds + 1, Action.NONE, True, RULES)
    assert s.maybe_protected


def test_apply_records_protection_until_its_expiry():
    after = policy.apply(state(), True, 1000, Action.PROTECT, True, RULES)
    assert after.protected_until == 1000 + RULES.expires_in_minutes * 60


def test_an_expired_protection_is_forgotten():
    after = policy.apply(state(protected_until=900), False, 1000, Action.NONE, True, RULES)
    assert after.protected_until is None


def test_next_delay_is_normal_while_protected_and_fast_while_unprotected():
    assert policy.next_delay(state(protected_until=5000), 1000, RULES) == RULES.interval_seconds
    assert policy.next_delay(state(), 1000, RULES) == RULES.watch_interval_seconds


def test_next_delay_backs_off_after_failed_calls():
    failed = policy.apply(state(), True, 1000, Action.PROTECT, False, RULES)
    failed = policy.apply(failed, True, 1001, Action.PROTECT, False, RULES)
    assert failed.failures == 2
    assert policy.next_delay(failed, 1001, RULES) == 4 * RULES.watch_interval_seconds
    assert policy.next_delay(replace(failed, failures=10), 1001, RULES) == RULES.interval_seconds
    recovered = policy.apply(failed, True, 1002, Action.PROTECT, True, RULES)
    assert recovered.failures == 0


# --- stdlib-only contract --------------------------------------------------------------


@pytest.mark.parametrize("module", [policy, tp], ids=["protection_policy", "task_protection"])
def test_module_imports_only_the_standard_library(module):
    # It runs in Airflow's stock image: no aws_cdk, no boto3; relative imports stay in runtime/.
    source = Path(module.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                imported.add(str(node.module).split(".")[0])
            else:
                assert node.level == 1, "relative imports must stay within openmwaa.runtime"
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- adapter: fake /proc, a fake ECS agent and a fake clock ---------------------------


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(exist_ok=True)
        (root / "self").mkdir()
        (root / "meminfo").write_text("MemTotal: 1 kB\n")
        self.marker = root.parent / "task-received"

    def add(self, pid: int, raw: bytes, ppid: int = 1, state: str = "S") -> None:
        (self.root / str(pid)).mkdir()
        (self.root / str(pid) / "stat").write_text(f"{pid} (python3) {state} {ppid} {pid} 0\n")
        (self.root / str(pid) / "cmdline").write_bytes(raw)

    def remove(self, pid: int) -> None:
        for name in ("cmdline", "stat"):
            (self.root / str(pid) / name).unlink()
        (self.root / str(pid)).rmdir()


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    fake = FakeProc(tmp_path / "proc")
    fake.add(1, BOOTSTRAP, ppid=0)
    fake.add(7, CELERY3_MAIN)
    fake.add(9, CELERY3_POOL, ppid=7)
    fake.add(10, AIRFLOW3_SUPERVISOR, ppid=7)  # the title a pool process keeps after a task
    (fake.root / "11").mkdir()  # a process that ended: nothing left to read
    return fake


PROTECT = {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
RELEASE = {"ProtectionEnabled": False}
FAST = ProtectionRules(warmup_seconds=0, watch_interval_seconds=0.01)
WALL_CLOCK_OFFSET = 1_700_000_000.0


class FakeClock(tp.Clock):
    """Time that moves only when the monitor waits between two checks.

    Each wait adds its seconds, then runs the test's script (a generator) up to its next
    ``yield``: the script looks at what the monitor did and changes the world between two
    checks. The monitor stops when the script ends; an assertion in it ends the test.
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.waits: list[float] = []
        self.script: Iterator[None] = iter(())

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return WALL_CLOCK_OFFSET + self.now

    def wait(self, stop: threading.Event, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        try:
            next(self.script)
        except StopIteration:
            stop.set()


def until(condition: Callable[[], bool], checks: int = 100) -> Iterator[None]:
    """Let the monitor check again until ``condition`` holds, at most ``checks`` times."""
    for _ in range(checks):
        if condition():
            return
        yield
    assert condition(), f"condition not met within {checks} checks"


def checks(count: int) -> Iterator[None]:
    """Let the monitor check ``count`` times."""
    for _ in range(count):
        yield


def run_monitor(
    agent: FakeEcsAgent,
    script: Iterator[None],
    *,
    proc_root: Path,
    marker: Path,
    rules: ProtectionRules = FAST,
    interval: float = 0.02,
    clock: FakeClock | None = None,
) -> FakeClock:
    """Run the monitor in this thread on a fake clock until ``script`` ends."""
    clock = clock or FakeClock()
    clock.script = script
    tp.run_monitor(
        threading.Event(),
        agent_uri=agent.uri,
        interval_seconds=interval,
        proc_root=str(proc_root),
        marker_path=str(marker),
        rules=rules,
        clock=clock,
    )
    return clock


def releases(agent: FakeEcsAgent) -> int:
    return sum(body["ProtectionEnabled"] is False for body in agent.bodies())


def test_read_processes_reads_pid_directories_and_skips_vanished_ones(proc):
    assert sorted(tp.read_processes(str(proc.root)), key=lambda p: p.pid) == [
        policy.ProcessInfo(1, 0, "S", policy.cmdline_text(BOOTSTRAP)),
        policy.ProcessInfo(7, 1, "S", policy.cmdline_text(CELERY3_MAIN)),
        policy.ProcessInfo(9, 7, "S", policy.cmdline_text(CELERY3_POOL)),
        policy.ProcessInfo(10, 7, "S", policy.cmdline_text(AIRFLOW3_SUPERVISOR)),
    ]


def test_read_processes_of_this_machine_finds_this_process():
    mine = [p for p in tp.read_processes() if p.pid == os.getpid()]
    assert len(mine) == 1
    assert mine[0].ppid == os.getppid() and mine[0].state in "RS"
    assert "pytest" in mine[0].cmdline or "python" in mine[0].cmdline


def test_marker_age_and_touch(tmp_path):
    marker = str(tmp_path / "marker")
    assert tp.marker_age(marker, 5000.0) is None
    tp.touch_marker(marker, 4990.0)
    assert tp.marker_age(marker, 5000.0) == pytest.approx(10.0)
    tp.touch_marker(marker, 5000.0)  # an existing marker is touched again
    assert tp.marker_age(marker, 5000.0) == pytest.approx(0.0)


def test_real_clock_reads_the_time_module_and_waits_on_the_stop_event():
    before = (time.monotonic(), time.time())
    now = (tp.REAL_CLOCK.monotonic(), tp.REAL_CLOCK.time())
    after = (time.monotonic(), time.time())
    assert before[0] <= now[0] <= after[0] and before[1] <= now[1] <= after[1]
    stop = threading.Event()
    stop.set()
    tp.REAL_CLOCK.wait(stop, 3600)  # returns at once: stop is set


def test_agent_client_puts_the_protection_state(agent):
    client = tp.AgentClient(agent.uri)
    assert client.set_protection(True, 60)
    assert client.set_protection(False)
    assert agent.requests == [
        ("PUT", agent.protection_path, PROTECT),
        ("PUT", agent.protection_path, RELEASE),
    ]


def test_agent_client_reports_refusals_and_http_errors(agent, caplog):
    agent.responses = [
        (200, {"failure": {"Arn": "arn", "Reason": "TASK_NOT_VALID", "Detail": None}}),
        (400, {"error": {"Code": "InvalidParameterException", "Message": "bad"}}),
    ]
    client = tp.AgentClient(agent.uri)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        assert not client.set_protection(True, 60)
        assert not client.set_protection(True, 60)
    assert "refused by the ECS agent" in caplog.text and "TASK_NOT_VALID" in caplog.text
    assert "HTTP 400" in caplog.text and "InvalidParameterException" in caplog.text


def test_agent_client_reports_an_unreachable_agent(caplog):
    client = tp.AgentClient("http://127.0.0.1:9/nothing", timeout_seconds=0.5)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        assert not client.set_protection(True, 60)
    assert "task protection enable failed" in caplog.text


def test_agent_client_counts_an_answer_cut_short_as_a_failed_call(agent, caplog):
    # The agent drops the connection mid-answer: http.client.IncompleteRead, an
    # HTTPException (not an OSError), must not escape the call.
    agent.truncated_answers = 1
    client = tp.AgentClient(agent.uri)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        assert not client.set_protection(True, 60)
    assert "task protection enable failed: IncompleteRead" in caplog.text
    assert client.set_protection(True, 60)


def test_receipt_with_an_answer_cut_short_retries_soon(agent, tmp_path):
    agent.truncated_answers = 1
    clock = FakeClock()
    protector = tp.ReceiptProtector(agent.uri, marker_path=str(tmp_path / "marker"), clock=clock)
    assert not protector.on_receipt()
    clock.now += 6
    assert protector.on_receipt()


def test_monitor_counts_an_answer_cut_short_as_a_failed_call(agent, proc, caplog):
    agent.truncated_answers = 1
    proc.add(20, AIRFLOW3_TASK, ppid=10)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        clock = run_monitor(
            agent,
            until(lambda: len(agent.bodies()) >= 2),
            proc_root=proc.root,
            marker=proc.marker,
            interval=5.0,
        )
    assert agent.bodies() == [PROTECT, PROTECT]
    # retried after the short backoff of a failed call, not after a full interval
    assert clock.waits[0] == 2 * FAST.watch_interval_seconds
    assert "task protection check failed" not in caplog.text


def test_monitor_protects_while_a_task_runs_and_releases_after_two_idle_checks(agent, proc):
    proc.add(20, AIRFLOW3_TASK, ppid=10)

    def script() -> Iterator[None]:
        yield from until(lambda: len(agent.bodies()) >= 1)
        yield from checks(5)  # several busy checks: no repeated PUT while protection is fresh
        assert agent.bodies() == [PROTECT]
        proc.remove(20)
        yield  # the first idle check
        assert agent.bodies() == [PROTECT]
        yield  # the second
        assert agent.bodies() == [PROTECT, RELEASE]
        proc.add(21, AIRFLOW2_RUNNER)  # a task picked up right after the release
        yield
        assert agent.bodies() == [PROTECT, RELEASE, PROTECT]

    run_monitor(agent, script(), proc_root=proc.root, marker=proc.marker)


def test_monitor_retries_a_failed_call_on_the_next_check(agent, proc, caplog):
    agent.responses = [(500, {"error": {"Code": "ServerException", "Message": "agent busy"}})]
    proc.add(20, AIRFLOW3_TASK, ppid=10)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        run_monitor(agent, checks(1), proc_root=proc.root, marker=proc.marker)
    assert agent.bodies() == [PROTECT, PROTECT]
    assert "HTTP 500" in caplog.text and "retrying next check" in caplog.text


def test_monitor_protects_during_warm_up_even_when_idle(agent, proc):
    rules = ProtectionRules(warmup_seconds=60)
    clock = run_monitor(agent, checks(10), proc_root=proc.root, marker=proc.marker, rules=rules)
    assert agent.bodies() == [PROTECT]
    assert clock.now - 1000.0 < rules.warmup_seconds


def test_monitor_without_agent_uri_returns_at_once(caplog):
    with caplog.at_level(logging.INFO, logger="openmwaa.task_protection"):
        tp.run_monitor(threading.Event(), agent_uri=None)
    assert "ECS_AGENT_URI is not set" in caplog.text


def test_monitor_counts_an_unreadable_proc_as_busy(agent, tmp_path):
    run_monitor(agent, checks(5), proc_root=tmp_path / "missing", marker=tmp_path / "no-marker")
    assert agent.bodies() == [PROTECT]


def test_monitor_protects_a_supervisor_with_a_child_and_releases_when_the_title_goes_stale(
    agent, proc
):
    proc.add(20, AIRFLOW3_SUPERVISOR, ppid=10)  # the runner, just forked

    def script() -> Iterator[None]:
        yield from until(lambda: len(agent.bodies()) >= 1)
        assert agent.bodies() == [PROTECT]
        proc.remove(20)  # task done: pid 10 keeps its supervisor title, with no child
        yield from until(lambda: len(agent.bodies()) >= 2)
        assert agent.bodies() == [PROTECT, RELEASE]

    run_monitor(agent, script(), proc_root=proc.root, marker=proc.marker)


# --- protection on task receipt --------------------------------------------------------


def test_receipt_protects_at_once_and_touches_the_marker_first(agent, tmp_path):
    marker = tmp_path / "marker"
    seen: list[bool] = []
    agent.on_request = lambda _body: seen.append(marker.exists())
    protector = tp.ReceiptProtector(agent.uri, marker_path=str(marker))

    assert protector.on_receipt()

    assert agent.bodies() == [PROTECT]
    assert seen == [True]  # the marker was there before the agent heard of the task


def test_receipt_skips_the_call_while_the_last_one_is_fresh(agent, tmp_path):
    marker = str(tmp_path / "marker")
    clock = FakeClock()
    protector = tp.ReceiptProtector(agent.uri, marker_path=marker, clock=clock)
    assert protector.on_receipt()
    os.utime(marker, (0, 0))
    clock.now += RULES.receipt_grace_seconds / 2 - 1
    assert not protector.on_receipt()
    # the marker is still touched on every receipt: it keeps the monitor from releasing
    assert tp.marker_age(marker, clock.time()) == pytest.approx(0.0)
    clock.now += 2
    assert protector.on_receipt()
    assert len(agent.bodies()) == 2


def test_receipt_retries_soon_after_a_failed_call(agent, tmp_path, caplog):
    agent.responses = [(500, {"error": {"Code": "ServerException", "Message": "agent busy"}})]
    clock = FakeClock()
    protector = tp.ReceiptProtector(agent.uri, marker_path=str(tmp_path / "marker"), clock=clock)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        assert not protector.on_receipt()
    clock.now += 1
    assert not protector.on_receipt()
    assert len(agent.bodies()) == 1
    clock.now += 5
    assert protector.on_receipt()
    assert "HTTP 500" in caplog.text


def test_receipt_with_an_unreachable_agent_gives_up_at_its_short_timeout(tmp_path, monkeypatch):
    timeouts: list[float] = []

    def refuse(_request: object, timeout: float) -> NoReturn:
        timeouts.append(timeout)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(tp.urllib.request, "urlopen", refuse)
    protector = tp.ReceiptProtector(
        "http://127.0.0.1:9/nothing", marker_path=str(tmp_path / "marker"), timeout_seconds=0.5
    )
    assert not protector.on_receipt()
    assert timeouts == [0.5]  # the consumer waits no longer than this for the agent
    assert (tmp_path / "marker").exists()


def test_monitor_counts_a_fresh_receipt_marker_as_busy(agent, proc):
    # Received, but no task process yet: protection stays on for the grace period.
    rules = replace(FAST, receipt_grace_seconds=0.5)
    clock = FakeClock()
    received_at = clock.now
    tp.touch_marker(str(proc.marker), clock.time())

    def script() -> Iterator[None]:
        yield from until(lambda: len(agent.bodies()) >= 1)
        yield from checks(10)
        assert clock.now - received_at < rules.receipt_grace_seconds
        assert agent.bodies() == [PROTECT]
        yield from until(lambda: len(agent.bodies()) >= 2)  # the marker went stale
        assert agent.bodies() == [PROTECT, RELEASE]
        assert clock.now - received_at >= rules.receipt_grace_seconds

    run_monitor(agent, script(), proc_root=proc.root, marker=proc.marker, rules=rules, clock=clock)


def test_monitor_releases_receipt_protection_though_its_own_calls_failed(agent, proc):
    """The receipt handler turned protection on; every call of the monitor failed while the
    worker was busy. Once idle, the monitor must still release, retrying failed releases."""
    failing = threading.Event()
    failing.set()

    def fail_while_told(body: dict[str, object]) -> None:
        with agent.lock:
            agent.responses = (
                [(500, {"error": {"Code": "ServerException", "Message": "agent busy"}})]
                if failing.is_set()
                else []
            )

    clock = FakeClock()
    assert tp.ReceiptProtector(agent.uri, marker_path=str(proc.marker), clock=clock).on_receipt()
    agent.on_request = fail_while_told

    def script() -> Iterator[None]:
        # busy (the marker): the monitor's protect calls fail; idle: its releases fail too
        yield from until(lambda: releases(agent) >= 2)
        failing.clear()
        yield from until(lambda: releases(agent) >= 3)
        yield from checks(20)  # released: no more calls while idle

    rules = replace(FAST, receipt_grace_seconds=0.3)
    run_monitor(agent, script(), proc_root=proc.root, marker=proc.marker, rules=rules, clock=clock)
    assert agent.bodies()[-1] == RELEASE
    assert releases(agent) == 3


def test_a_task_received_during_the_release_is_protected_again_at_once(agent, proc):
    """The race: the monitor decides to release, a task arrives, its receipt protection lands
    before the monitor's release. The monitor looks again after releasing and protects."""
    clock = FakeClock()
    agent.clock = clock.monotonic
    protector = tp.ReceiptProtector(agent.uri, marker_path=str(proc.marker), clock=clock)
    received = threading.Event()

    def receive_during_release(body: dict[str, object]) -> None:
        if body["ProtectionEnabled"] is False and not received.is_set():
            received.set()
            protector.on_receipt()  # the receipt's PUT lands first

    agent.on_request = receive_during_release
    # Checks every 0.5 s: without the look right after the release, the protection would
    # come at the next check, 0.5 s after it.
    rules = replace(FAST, warmup_seconds=0.1, watch_interval_seconds=0.5)
    run_monitor(
        agent,
        # protected while warming up, then idle (a stale supervisor title only): released
        until(lambda: len(agent.bodies()) >= 4),
        proc_root=proc.root,
        marker=proc.marker,
        rules=rules,
        interval=0.5,
        clock=clock,
    )
    bodies = agent.bodies()
    # protect (warm-up), protect (receipt), release (landed last), protect (monitor, at once)
    assert [b["ProtectionEnabled"] for b in bodies[:4]] == [True, True, False, True]
    assert agent.times[3] == agent.times[2]  # in the same check: no wait between


def test_receipt_protects_even_when_the_marker_cannot_be_written(agent, tmp_path, caplog):
    protector = tp.ReceiptProtector(agent.uri, marker_path=str(tmp_path / "missing" / "marker"))
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        assert protector.on_receipt()
    assert agent.bodies() == [PROTECT]
    assert "cannot touch" in caplog.text
