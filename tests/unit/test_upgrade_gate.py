"""The scheduler's upgrade gate (openmwaa.runtime.upgrade_gate): the pure decision, its wait
loop with a fake clock, and the SQL adapter against a fake psycopg2 connection."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openmwaa.runtime import upgrade_gate
from openmwaa.runtime.upgrade_gate import Gate, Observation, Verdict, decide

OLD_HEAD = "29ce7909c52b"
NEW_HEAD = "b87d2135fa50"
NEWER_HEAD = "ffffffffffff"
AIRFLOW_2_HEAD = "5f2621c13b39"
KNOWN = {"4bc4d934e2bc": "2.6.2", AIRFLOW_2_HEAD: "2.10.3", OLD_HEAD: "3.2.0", NEW_HEAD: "3.3.0"}
GATE = Gate("3.3.2", frozenset({NEW_HEAD}), KNOWN)
OLD_SCHEDULER = ("SchedulerJob", "ip-10-0-1-5.ec2.internal")
OLD_TRIGGERER = ("TriggererJob", "ip-10-0-2-7.ec2.internal")


def seen(*alive: tuple[str, str], heads: Sequence[str] = (OLD_HEAD,)) -> Observation:
    return Observation(frozenset(heads), tuple(alive))


# --- the decision ---------------------------------------------------------------------------


def test_decide_waits_while_an_older_component_is_alive_and_names_it() -> None:
    verdict, message = decide(GATE, seen(OLD_SCHEDULER, OLD_TRIGGERER), 10.0)

    assert verdict is Verdict.WAIT
    assert "SchedulerJob on ip-10-0-1-5.ec2.internal" in message
    assert "TriggererJob on ip-10-0-2-7.ec2.internal" in message


def test_decide_migrates_once_no_older_component_is_alive() -> None:
    verdict, message = decide(GATE, seen(), 30.0)

    assert verdict is Verdict.MIGRATE
    assert message == "no older Airflow component is alive"


def test_decide_migrates_a_new_database_at_once() -> None:
    # no alembic_version and no job table: the adapter reads no heads and no jobs
    assert decide(GATE, seen(heads=()), 0.0)[0] is Verdict.MIGRATE


def test_fails_when_older_components_outlive_the_timeout() -> None:
    verdict, message = decide(GATE, seen(OLD_SCHEDULER), GATE.timeout)

    assert verdict is Verdict.FAIL
    assert "SchedulerJob on ip-10-0-1-5.ec2.internal" in message
    assert f"{upgrade_gate.WAIT_TIMEOUT_SECONDS} s" in message


def test_decide_waits_just_before_the_timeout() -> None:
    assert decide(GATE, seen(OLD_SCHEDULER), GATE.timeout - 0.1)[0] is Verdict.WAIT


def test_decide_retries_an_unreadable_database_until_the_timeout() -> None:
    unreadable = Observation(None, None, "OperationalError('connection refused')")

    assert decide(GATE, unreadable, 60.0) == (
        Verdict.WAIT,
        "waiting for older components to stop (60 s): cannot read the metadata database:"
        " OperationalError('connection refused')",
    )
    verdict, message = decide(GATE, unreadable, GATE.timeout)
    assert verdict is Verdict.FAIL
    assert "connection refused" in message


def test_fails_fast_when_a_newer_airflow_migrated_the_database() -> None:
    # a rollback: the newer scheduler is still alive, and waiting for it would be wrong
    verdict, message = decide(GATE, seen(OLD_SCHEDULER, heads=(NEWER_HEAD,)), 0.0)

    assert verdict is Verdict.FAIL
    assert "migrated by a newer Airflow" in message
    assert NEWER_HEAD in message
    assert "`airflow db downgrade --to-version 3.3.2`" in message
    assert "deploy the newer version again" in message


def test_decide_has_no_downgrade_guard_without_the_migration_files() -> None:
    gate = Gate("3.3.2", frozenset({NEW_HEAD}), {})

    assert decide(gate, seen(heads=(NEWER_HEAD,)), 0.0)[0] is Verdict.MIGRATE


def test_decide_stops_waiting_once_another_scheduler_migrated() -> None:
    # its new scheduler job is alive: it is not an older component
    verdict, message = decide(GATE, seen(OLD_SCHEDULER, heads=(NEW_HEAD,)), 5.0)

    assert verdict is Verdict.MIGRATE
    assert "another scheduler migrated" in message


def test_decide_keeps_waiting_when_the_source_heads_are_unknown() -> None:
    gate = Gate("3.3.2", None, KNOWN)

    assert decide(gate, seen(OLD_SCHEDULER, heads=(NEW_HEAD,)), 5.0)[0] is Verdict.WAIT


def test_database_ahead_needs_an_unknown_revision() -> None:
    assert upgrade_gate.database_ahead(GATE, frozenset({NEWER_HEAD}))
    assert upgrade_gate.database_ahead(GATE, frozenset({OLD_HEAD, NEWER_HEAD}))
    assert not upgrade_gate.database_ahead(GATE, frozenset({OLD_HEAD}))
    assert not upgrade_gate.database_ahead(GATE, frozenset())
    assert not upgrade_gate.database_ahead(GATE, None)


# --- what Airflow tells --------------------------------------------------------------------

# As Airflow 3.3.2's `airflow db check-migrations` fails (airflow/utils/db.py).
CHECK_OUTPUT = (
    "Traceback (most recent call last):\n  ...\nTimeoutError: There are still unapplied"
    f" migrations after 1 seconds. MigrationHead(s) in DB: {{'{OLD_HEAD}'}} | Migration"
    f" Head(s) in Source Code: {{'{NEW_HEAD}'}}\n"
)


def test_source_heads_from_check_migrations_output() -> None:
    assert upgrade_gate.source_heads(CHECK_OUTPUT) == frozenset({NEW_HEAD})
    assert upgrade_gate.source_heads(
        "MigrationHead(s) in DB: set() | Migration Head(s) in Source Code: {'a1', 'b2'}"
    ) == frozenset({"a1", "b2"})
    assert upgrade_gate.source_heads("could not connect to server") is None


def test_decide_refuses_an_airflow_2_database_under_airflow_3_before_any_wait() -> None:
    verdict, message = decide(GATE, seen(OLD_SCHEDULER, heads=(AIRFLOW_2_HEAD,)), 0.0)

    assert verdict is Verdict.FAIL
    assert "Airflow 2.10.3's" in message and "new environment" in message
    # a minor upgrade inside the major line is not refused
    assert decide(GATE, seen(heads=(OLD_HEAD,)), 0.0)[0] is Verdict.MIGRATE
    assert upgrade_gate.older_major(Gate("2.11.2", None, KNOWN), frozenset({AIRFLOW_2_HEAD})) == ""


def test_revisions_in_migration_files() -> None:
    texts = [
        f'revision = "{OLD_HEAD}"\ndown_revision = "4bc4d934e2bc"\nbranch_labels = None\n'
        'airflow_version = "3.2.0"\n',
        "revision = 'a1b2c3d4e5f6'\ndown_revision = None\nairflow_version = '2.10.3'\n",
        'revision: str = "0123456789ab"\ndown_revision: str | None = "a1b2c3d4e5f6"\n',
        '"""Add a column.\n\nRevision ID: deadbeef0000\n"""\n',
    ]

    assert upgrade_gate.revisions_in(texts) == {
        OLD_HEAD: "3.2.0",
        "a1b2c3d4e5f6": "2.10.3",
        "0123456789ab": "",
    }


def test_airflow_revisions_reads_the_installed_migration_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "airflow" / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_add.py").write_text(f'revision = "{OLD_HEAD}"\ndown_revision = None\n')
    (versions / "0002_add.py").write_text(f'revision = "{NEW_HEAD}"\ndown_revision = "x"\n')
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path / "airflow")])
    monkeypatch.setattr(upgrade_gate.importlib.util, "find_spec", lambda _name: spec)

    assert upgrade_gate.airflow_revisions() == {OLD_HEAD: "", NEW_HEAD: ""}


def test_airflow_revisions_without_airflow_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upgrade_gate.importlib.util, "find_spec", lambda _name: None)

    assert upgrade_gate.airflow_revisions() == {}


# --- the wait loop --------------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run_wait(gate: Gate, rounds: list[Observation], clock: FakeClock) -> tuple[Any, list[str]]:
    logged: list[str] = []
    answers = iter(rounds)
    result = upgrade_gate.wait(
        gate, lambda: next(answers), logged.append, monotonic=clock.monotonic, sleep=clock.sleep
    )
    return result, logged


def test_wait_logs_each_round_until_no_older_component_is_alive() -> None:
    clock = FakeClock()

    result, logged = run_wait(
        GATE, [seen(OLD_SCHEDULER, OLD_TRIGGERER), seen(OLD_TRIGGERER), seen()], clock
    )

    assert result == (Verdict.MIGRATE, "no older Airflow component is alive")
    assert len(logged) == 2
    assert "SchedulerJob" in logged[0] and "TriggererJob" in logged[0]
    assert "SchedulerJob" not in logged[1] and "TriggererJob" in logged[1]
    assert clock.sleeps == [upgrade_gate.POLL_SECONDS] * 2


def test_wait_fails_at_the_timeout() -> None:
    clock = FakeClock()
    gate = Gate("3.3.2", frozenset({NEW_HEAD}), KNOWN, timeout=12.0)

    (verdict, message), logged = run_wait(gate, [seen(OLD_SCHEDULER)] * 10, clock)

    assert verdict is Verdict.FAIL
    assert "SchedulerJob on ip-10-0-1-5.ec2.internal" in message
    assert len(logged) == 3  # at 0, 5 and 10 s; the round at 15 s gives up
    assert clock.now - 1000.0 == 15.0


def test_wait_checks_at_once_without_sleeping() -> None:
    clock = FakeClock()

    result, logged = run_wait(GATE, [seen()], clock)

    assert result[0] is Verdict.MIGRATE
    assert (logged, clock.sleeps) == ([], [])


# --- the SQL adapter ------------------------------------------------------------------------


class FakePgError(Exception):
    """As psycopg2's errors: the SQLSTATE in ``pgcode``."""

    def __init__(self, message: str, pgcode: str | None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


UNDEFINED_TABLE = FakePgError('relation "job" does not exist', "42P01")

Answer = list[tuple[Any, ...]] | Exception


@dataclass
class FakeDatabase:
    """Connections that answer the gate's two queries, one scripted round per observing
    connection (the last round repeats): (alembic_version rows, job rows), each rows or an
    error. The lock's statements answer nothing, or ``lock_error``."""

    rounds: list[tuple[Answer, Answer]]
    connect_error: Exception | None = None
    lock_error: Exception | None = None
    executed: list[tuple[str, Any]] = field(default_factory=list)
    connections: list[FakeConnection] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    """What happened to the lock: "locked", "released" (each followed by ``after`` and what
    ``probe`` returns, if given)."""
    probe: Callable[[], str] | None = None

    def event(self, name: str) -> None:
        self.events.append(name if self.probe is None else f"{name} after {self.probe()}")

    def connect(self) -> FakeConnection:
        if self.connect_error is not None:
            raise self.connect_error
        observing = [c for c in self.connections if not c.locking]
        index = min(len(observing), len(self.rounds) - 1)
        connection = FakeConnection(self, self.rounds[index])
        self.connections.append(connection)
        return connection


@dataclass
class FakeConnection:
    database: FakeDatabase
    answers: tuple[Answer, Answer]
    autocommit: bool = False
    closed: bool = False
    locking: bool = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True
        if self.locking:
            self.database.event("released")


@dataclass
class FakeCursor:
    connection: FakeConnection
    result: list[tuple[Any, ...]] = field(default_factory=list)

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def execute(self, query: str, params: Any = None) -> None:
        assert self.connection.autocommit, "a query outside autocommit leaves a transaction open"
        database = self.connection.database
        database.executed.append((query, params))
        if "lock" in query:
            self.connection.locking = True
            if database.lock_error is not None:
                raise database.lock_error
            if "pg_advisory_lock" in query:
                database.event("locked")
            return
        heads, jobs = self.connection.answers
        answer = heads if "alembic_version" in query else jobs
        if isinstance(answer, Exception):
            raise answer
        self.result = answer

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.result


def test_observe_reads_the_heads_and_the_alive_components() -> None:
    db = FakeDatabase([([(OLD_HEAD,)], [OLD_SCHEDULER, OLD_TRIGGERER])])

    observed = upgrade_gate.observe(db.connect)

    assert observed == Observation(frozenset({OLD_HEAD}), (OLD_SCHEDULER, OLD_TRIGGERER))
    (heads_query, heads_params), (jobs_query, jobs_params) = db.executed
    assert heads_query == "SELECT version_num FROM alembic_version"
    assert heads_params is None
    assert "FROM job WHERE state = 'running' AND job_type IN %s" in jobs_query
    assert "latest_heartbeat > now() - %s * interval '1 second'" in jobs_query
    assert jobs_params == (
        ("SchedulerJob", "TriggererJob", "DagProcessorJob"),
        upgrade_gate.ALIVE_WITHIN_SECONDS,
    )
    assert db.connections[0].closed


def test_observe_reads_a_new_database_as_nothing_alive() -> None:
    no_version_table = FakePgError('relation "alembic_version" does not exist', "42P01")
    db = FakeDatabase([(no_version_table, UNDEFINED_TABLE)])

    assert upgrade_gate.observe(db.connect) == Observation(frozenset(), ())


def test_observe_reports_any_other_database_error_as_unreadable() -> None:
    # only "relation does not exist" means nothing alive: a cancelled query does not
    cancelled = FakePgError("canceling statement due to statement timeout", "57014")
    db = FakeDatabase([([(OLD_HEAD,)], cancelled)])

    observed = upgrade_gate.observe(db.connect)

    assert (observed.heads, observed.alive) == (None, None)
    assert "statement timeout" in observed.error
    assert db.connections[0].closed


def test_observe_reports_an_error_without_sqlstate_as_unreadable() -> None:
    db = FakeDatabase([([(OLD_HEAD,)], RuntimeError("relation does not exist, but not pg's"))])

    assert upgrade_gate.observe(db.connect).alive is None


def test_observe_reports_a_failed_connection_as_unreadable() -> None:
    db = FakeDatabase([([], [])], connect_error=FakePgError("connection refused", None))

    observed = upgrade_gate.observe(db.connect)

    assert (observed.heads, observed.alive) == (None, None)
    assert "connection refused" in observed.error


def test_lock_takes_the_schedulers_advisory_lock_with_a_timeout() -> None:
    db = FakeDatabase([([], [])])

    holder = upgrade_gate.lock(db.connect, 2100)

    assert db.executed == [
        ("SET lock_timeout = %s", ("2100s",)),
        ("SELECT pg_advisory_lock(%s)", (int.from_bytes(b"openmwaa", "big"),)),
    ]
    assert db.events == ["locked"]
    holder.close()
    assert db.events == ["locked", "released"]


def test_lock_closes_its_connection_when_it_fails() -> None:
    db = FakeDatabase([([], [])], lock_error=FakePgError("lock timeout", "55P03"))

    with pytest.raises(FakePgError):
        upgrade_gate.lock(db.connect, 10)

    assert db.connections[0].closed


def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """psycopg2.connect's calls, through a fake psycopg2 (this venv has none)."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    fake = types.ModuleType("psycopg2")
    fake.connect = lambda *args, **kwargs: calls.append((args, kwargs))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psycopg2", fake)
    return calls


def test_connector_uses_airflows_url_without_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = connect_calls(monkeypatch)
    url = "postgresql+psycopg2://u%40x:p%2Fw%3A@db.local:5432/airflow"

    upgrade_gate.connector({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url})()
    upgrade_gate.connector({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:p@h/d"})()

    assert calls == [
        (
            ("postgresql://u%40x:p%2Fw%3A@db.local:5432/airflow",),
            {"connect_timeout": 10, "options": None},
        ),
        (("postgresql://u:p@h/d",), {"connect_timeout": 10, "options": None}),
    ]


def test_connector_searches_airflows_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = connect_calls(monkeypatch)
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://a:p@db:5432/airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA": "af",
    }

    upgrade_gate.connector(env)()

    assert calls[0][1]["options"] == "-csearch_path=af"
