"""Worker-side ECS task scale-in protection: busy detection, rules, and the agent adapter.

The adapter is tested against a fake /proc tree and a local HTTP server standing in for the
ECS agent's task-protection endpoint.
"""

from __future__ import annotations

import ast
import http.server
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from openmwaa.runtime import task_protection as tp
from openmwaa.runtime.task_protection import Action, MonitorState, ProtectionRules

RULES = ProtectionRules()

AIRFLOW3_TASK = b"airflow worker -- 0199a3c2-5d1e-7f3a-9b1c-3c7e2f4d5a6b\x00\x00\x00\x00"
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
SERVE_LOGS = b"airflow serve-logs\x00"
BOOTSTRAP = b"python\x00-m\x00openmwaa.runtime.bootstrap\x00worker\x00"


# --- busy detection --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [AIRFLOW3_TASK, AIRFLOW2_SUPERVISOR, AIRFLOW2_RUNNER, AIRFLOW2_SUBPROCESS],
    ids=["airflow3-task-runner", "airflow2-supervisor", "airflow2-runner", "airflow2-subprocess"],
)
def test_is_task_process_recognises_airflow_task_processes(raw):
    assert tp.is_task_process(tp.cmdline_text(raw))


@pytest.mark.parametrize(
    "raw",
    [
        CELERY_MAIN,
        CELERY_POOL,
        SERVE_LOGS,
        BOOTSTRAP,
        b"airflow worker -- LocalExecutor: <idle>\x00",
        b"bash\x00-c\x00echo airflow tasks list\x00",
        b"",
    ],
    ids=["celery-main", "celery-pool", "serve-logs", "bootstrap", "idle-slot", "other", "empty"],
)
def test_is_task_process_ignores_other_processes(raw):
    assert not tp.is_task_process(tp.cmdline_text(raw))


def test_is_task_process_accepts_python_dash_m_airflow():
    assert tp.is_task_process("python -m airflow tasks run etl load 2025-01-01 --raw")


def test_cmdline_text_joins_arguments_and_strips_title_padding():
    assert tp.cmdline_text(b"a\x00b c\x00\x00") == "a b c"
    assert tp.cmdline_text(b"airflow worker -- x" + b" " * 40) == "airflow worker -- x"


def test_is_busy_when_any_process_is_a_task():
    assert tp.is_busy(["airflow celery worker", "airflow worker -- abc"])
    assert not tp.is_busy(["airflow celery worker", "[celeryd: x:ForkPoolWorker-1]"])


# --- rules -----------------------------------------------------------------------------


def state(**kwargs: float | int | None) -> MonitorState:
    return MonitorState(started_at=0.0, **kwargs)  # type: ignore[arg-type]


def test_decide_protects_a_new_worker_during_warm_up():
    assert tp.decide(state(), busy=False, now=10, rules=RULES) is Action.PROTECT


def test_decide_protects_a_busy_worker():
    assert tp.decide(state(), busy=True, now=1000, rules=RULES) is Action.PROTECT


def test_decide_does_not_repeat_a_fresh_protection():
    s = state(protected_until=1000 + 3600)
    assert tp.decide(s, busy=True, now=1000, rules=RULES) is Action.NONE


def test_decide_renews_protection_before_it_expires():
    s = state(protected_until=1000 + RULES.renew_before_seconds - 1)
    assert tp.decide(s, busy=True, now=1000, rules=RULES) is Action.PROTECT


def test_decide_needs_two_idle_checks_in_a_row_to_release():
    s = state(protected_until=5000)
    now = RULES.warmup_seconds + 1
    assert tp.decide(s, busy=False, now=now, rules=RULES) is Action.NONE
    s = tp.apply(s, False, now, Action.NONE, True, RULES)
    assert tp.decide(s, busy=False, now=now + 15, rules=RULES) is Action.RELEASE


def test_a_busy_check_resets_the_idle_count():
    s = state(protected_until=5000, idle_streak=1)
    s = tp.apply(s, True, 500, Action.NONE, True, RULES)
    assert s.idle_streak == 0
    assert tp.decide(s, busy=False, now=515, rules=RULES) is Action.NONE


def test_warm_up_counts_as_busy_so_idle_checks_start_after_it():
    s = state(protected_until=5000)
    for now in range(0, int(RULES.warmup_seconds), 15):
        assert tp.decide(s, busy=False, now=now, rules=RULES) is Action.NONE
        s = tp.apply(s, False, now, Action.NONE, True, RULES)
    assert s.idle_streak == 0


def test_decide_does_not_release_an_unprotected_worker():
    s = state(idle_streak=5)
    assert tp.decide(s, busy=False, now=1000, rules=RULES) is Action.NONE


def test_a_failed_call_keeps_the_state_so_the_next_check_retries():
    s = state()
    after = tp.apply(s, True, 1000, Action.PROTECT, False, RULES)
    assert after.protected_until is None
    assert tp.decide(after, busy=True, now=1015, rules=RULES) is Action.PROTECT
    protected = state(protected_until=5000, idle_streak=1)
    after = tp.apply(protected, False, 1000, Action.RELEASE, False, RULES)
    assert tp.decide(after, busy=False, now=1015, rules=RULES) is Action.RELEASE


def test_apply_records_protection_until_its_expiry():
    after = tp.apply(state(), True, 1000, Action.PROTECT, True, RULES)
    assert after.protected_until == 1000 + RULES.expires_in_minutes * 60


def test_an_expired_protection_is_forgotten():
    after = tp.apply(state(protected_until=900), False, 1000, Action.NONE, True, RULES)
    assert after.protected_until is None


def test_next_delay_is_normal_while_protected_and_fast_while_unprotected():
    assert tp.next_delay(state(protected_until=5000), 1000, RULES) == RULES.interval_seconds
    assert tp.next_delay(state(), 1000, RULES) == RULES.watch_interval_seconds


def test_next_delay_backs_off_after_failed_calls():
    failed = tp.apply(state(), True, 1000, Action.PROTECT, False, RULES)
    failed = tp.apply(failed, True, 1001, Action.PROTECT, False, RULES)
    assert failed.failures == 2
    assert tp.next_delay(failed, 1001, RULES) == 4 * RULES.watch_interval_seconds
    assert tp.next_delay(replace(failed, failures=10), 1001, RULES) == RULES.interval_seconds
    recovered = tp.apply(failed, True, 1002, Action.PROTECT, True, RULES)
    assert recovered.failures == 0


# --- stdlib-only contract --------------------------------------------------------------


def test_module_imports_only_the_standard_library():
    # It runs in Airflow's stock image: no aws_cdk, no boto3; relative imports stay in runtime/.
    source = Path(tp.__file__).read_text()
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


# --- adapter: fake /proc and a fake ECS agent ------------------------------------------


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(exist_ok=True)
        (root / "self").mkdir()
        (root / "meminfo").write_text("MemTotal: 1 kB\n")

    def add(self, pid: int, raw: bytes) -> None:
        (self.root / str(pid)).mkdir()
        (self.root / str(pid) / "cmdline").write_bytes(raw)

    def remove(self, pid: int) -> None:
        (self.root / str(pid) / "cmdline").unlink()
        (self.root / str(pid)).rmdir()


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    fake = FakeProc(tmp_path / "proc")
    fake.add(1, BOOTSTRAP)
    fake.add(7, CELERY_MAIN)
    fake.add(9, CELERY_POOL)
    (fake.root / "11").mkdir()  # a process that ended: no cmdline left to read
    return fake


class Agent(http.server.ThreadingHTTPServer):
    """Records PUT bodies; answers with the queued responses, then success."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AgentHandler)
        self.requests: list[tuple[str, str, dict[str, object]]] = []
        self.responses: list[tuple[int, dict[str, object]]] = []
        self.lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/task-id"

    def bodies(self) -> list[dict[str, object]]:
        with self.lock:
            return [body for _, _, body in self.requests]


class AgentHandler(http.server.BaseHTTPRequestHandler):
    server: Agent

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))
            status, answer = (
                self.server.responses.pop(0)
                if self.server.responses
                else (
                    200,
                    {
                        "protection": {
                            "ProtectionEnabled": body["ProtectionEnabled"],
                            "TaskArn": "arn:aws:ecs:us-east-1:1:task/c/abc",
                        }
                    },
                )
            )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def agent() -> Iterator[Agent]:
    server = Agent()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


FAST = ProtectionRules(warmup_seconds=0, watch_interval_seconds=0.01)


def start_monitor(agent: Agent, proc: FakeProc, rules: ProtectionRules = FAST):
    stop = threading.Event()
    thread = threading.Thread(
        target=tp.run_monitor,
        args=(stop,),
        kwargs={
            "agent_uri": agent.uri,
            "interval_seconds": 0.02,
            "proc_root": str(proc.root),
            "rules": rules,
        },
        daemon=True,
    )
    thread.start()
    return stop, thread


def wait_for(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_read_cmdlines_reads_pid_directories_and_skips_vanished_ones(proc):
    assert sorted(tp.read_cmdlines(str(proc.root))) == sorted(
        tp.cmdline_text(raw) for raw in (BOOTSTRAP, CELERY_MAIN, CELERY_POOL)
    )


def test_agent_client_puts_the_protection_state(agent):
    client = tp.AgentClient(agent.uri)
    assert client.set_protection(True, 60)
    assert client.set_protection(False)
    assert agent.requests == [
        (
            "PUT",
            "/api/task-id/task-protection/v1/state",
            {"ProtectionEnabled": True, "ExpiresInMinutes": 60},
        ),
        ("PUT", "/api/task-id/task-protection/v1/state", {"ProtectionEnabled": False}),
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


def test_monitor_protects_while_a_task_runs_and_releases_after_two_idle_checks(agent, proc):
    proc.add(20, AIRFLOW3_TASK)
    stop, thread = start_monitor(agent, proc)
    try:
        wait_for(lambda: len(agent.bodies()) >= 1)
        time.sleep(0.1)  # several busy checks: no repeated PUT while protection is fresh
        assert agent.bodies() == [{"ProtectionEnabled": True, "ExpiresInMinutes": 60}]
        proc.remove(20)
        wait_for(lambda: len(agent.bodies()) >= 2)
        assert agent.bodies()[1] == {"ProtectionEnabled": False}
        proc.add(21, AIRFLOW2_RUNNER)  # a task picked up right after the release
        wait_for(lambda: len(agent.bodies()) >= 3)
        assert agent.bodies()[2]["ProtectionEnabled"] is True
    finally:
        stop.set()
        thread.join(timeout=2)
    assert not thread.is_alive()


def test_monitor_retries_a_failed_call_on_the_next_check(agent, proc, caplog):
    agent.responses = [(500, {"error": {"Code": "ServerException", "Message": "agent busy"}})]
    proc.add(20, AIRFLOW3_TASK)
    with caplog.at_level(logging.WARNING, logger="openmwaa.task_protection"):
        stop, thread = start_monitor(agent, proc)
        try:
            wait_for(lambda: len(agent.bodies()) >= 2)
        finally:
            stop.set()
            thread.join(timeout=2)
    assert agent.bodies()[:2] == [{"ProtectionEnabled": True, "ExpiresInMinutes": 60}] * 2
    assert "HTTP 500" in caplog.text and "retrying next check" in caplog.text


def test_monitor_protects_during_warm_up_even_when_idle(agent, proc):
    rules = ProtectionRules(warmup_seconds=60)
    stop, thread = start_monitor(agent, proc, rules)
    try:
        wait_for(lambda: len(agent.bodies()) >= 1)
        time.sleep(0.1)
        assert agent.bodies() == [{"ProtectionEnabled": True, "ExpiresInMinutes": 60}]
    finally:
        stop.set()
        thread.join(timeout=2)


def test_monitor_without_agent_uri_returns_at_once(caplog):
    with caplog.at_level(logging.INFO, logger="openmwaa.task_protection"):
        tp.run_monitor(threading.Event(), agent_uri=None)
    assert "ECS_AGENT_URI is not set" in caplog.text


def test_monitor_counts_an_unreadable_proc_as_busy(agent, tmp_path):
    stop = threading.Event()
    thread = threading.Thread(
        target=tp.run_monitor,
        args=(stop,),
        kwargs={
            "agent_uri": agent.uri,
            "interval_seconds": 0.02,
            "proc_root": str(tmp_path / "missing"),
            "rules": FAST,
        },
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: len(agent.bodies()) >= 1)
        time.sleep(0.1)
        assert all(body["ProtectionEnabled"] is True for body in agent.bodies())
    finally:
        stop.set()
        thread.join(timeout=2)
