"""The scheduler's upgrade gate: migrate the metadata database once, after the older Airflow
components have stopped, and never under an Airflow older than the database.

An in-place upgrade (a new ``airflow_version``) rolls every ECS service at once, and ECS
starts the new tasks before it stops the old ones. A new scheduler that migrated at once would
leave the old scheduler, triggerer and dag-processor running on a schema they do not know. So
when the database is behind this Airflow, :mod:`.startup_steps` asks this module, every
:data:`POLL_SECONDS`, whether an older component is still alive, and migrates only once none
is (or another scheduler has migrated meanwhile). No new component runs a job before the
migration (they all wait for it), so every live row of Airflow's ``job`` table is an older
one's.

Pure decisions: :func:`decide` (migrate, wait or fail, and the log line), :func:`source_heads`
(this Airflow's migration heads, from ``airflow db check-migrations``), :func:`revisions_in`
(the revisions this Airflow's migration files define). I/O: :func:`observe` (plain SQL through
psycopg2, never Airflow's models, which may not match the old schema), :func:`lock` (the
schedulers' migration lock), :func:`connector`, :func:`airflow_revisions`.
Standard library only; psycopg2 (in the stock image, through the postgres provider) is
imported by :func:`connector` alone.
"""

from __future__ import annotations

import enum
import glob
import importlib.util
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALIVE_WITHIN_SECONDS = 60
"""A job row is an alive component if its last heartbeat is this recent. Components beat every
5 s (``[scheduler] scheduler_heartbeat_sec``, ``[triggerer] job_heartbeat_sec``) and Airflow
calls one unhealthy after 30 s without (``scheduler_health_check_threshold``,
``triggerer_health_check_threshold``, ``[dag_processor] health_check_threshold``); twice that
tolerates a live component whose heartbeat lags. A component stopped cleanly (SIGTERM) ends
its row at once; only one killed without that is waited for this long after its last beat."""
POLL_SECONDS = 5.0
WAIT_TIMEOUT_SECONDS = 15 * 60
"""How long a scheduler waits for older components before it gives up (fatal: ECS starts it
again). ECS stops them about 40 s after the new tasks run, plus their stop timeout."""
WAITED_JOB_TYPES = ("SchedulerJob", "TriggererJob", "DagProcessorJob")
"""The components waited for. Not Airflow 2's ``LocalTaskJob`` rows: task runs of old
workers, which finish them (warm shutdown, scale-in protection), possibly for hours."""
UNDEFINED_TABLE = "42P01"
"""PostgreSQL's SQLSTATE for "relation does not exist": a new database."""
HEADS_QUERY = "SELECT version_num FROM alembic_version"
ALIVE_QUERY = (
    "SELECT job_type, hostname FROM job WHERE state = 'running' AND job_type IN %s"
    " AND latest_heartbeat > now() - %s * interval '1 second' ORDER BY 1, 2"
)
MIGRATION_LOCK_ID = 8030029660558942561
"""The schedulers' session advisory lock around "check again, then migrate" (``openmwaa`` as
an int64; Airflow's own locks are 1 and 2), so a scheduler that waited beside another finds
the database migrated instead of migrating again."""


class Verdict(enum.Enum):
    """What the scheduler does next."""

    MIGRATE = "migrate"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class Observation:
    """One look at the metadata database."""

    heads: frozenset[str] | None
    """Its alembic revisions; empty: a new database; None: unreadable."""
    alive: tuple[tuple[str, str], ...] | None
    """(job type, hostname) of each alive component; None: unreadable."""
    error: str = ""


@dataclass(frozen=True)
class Gate:
    """What the scheduler knows before it looks at the database."""

    airflow_version: str
    source_heads: frozenset[str] | None
    """This Airflow's migration heads; None: unknown."""
    known_revisions: Mapping[str, str]
    """Every revision this Airflow's migrations define, with the Airflow version that brought
    it ("" if unnamed); empty: unknown (no downgrade or major-version guard)."""
    timeout: float = WAIT_TIMEOUT_SECONDS


def source_heads(check_output: str) -> frozenset[str] | None:
    """This Airflow's heads from the message ``airflow db check-migrations`` fails with
    (``... Migration Head(s) in Source Code: {'<rev>'}``, Airflow 2.x and 3.x); None if absent."""
    match = re.search(r"Head\(s\) in Source Code: (\{[^}]*\}|set\(\))", check_output)
    return frozenset(re.findall(r"'([^']+)'", match.group(1))) if match else None


def revisions_in(texts: Iterable[str]) -> dict[str, str]:
    """``{revision: airflow_version}`` of the migration files' texts (their ``revision = ...``
    and ``airflow_version = ...`` lines)."""
    found = {}
    for text in texts:
        version = re.search(r"^airflow_version\s*=\s*[\"']([^\"']+)", text, re.M)
        for rev in re.findall(r"^revision\b[^=\n]*=\s*[\"']([^\"']+)", text, re.M):
            found[rev] = version.group(1) if version else ""
    return found


def database_ahead(gate: Gate, heads: frozenset[str] | None) -> bool:
    """True if the database is at a revision this Airflow does not know: a newer Airflow
    migrated it (``airflow db migrate`` would fail with alembic's "Can't locate revision")."""
    return bool(heads and gate.known_revisions and not heads.issubset(gate.known_revisions))


def older_major(gate: Gate, heads: frozenset[str] | None) -> str:
    """The Airflow version of the database's revision if it is of an older major version than
    this Airflow (an Airflow 2 database under Airflow 3), else ""."""
    versions = sorted(gate.known_revisions.get(head, "") for head in heads or ())
    newest = versions[-1] if versions else ""
    older = newest and newest.split(".")[0] < gate.airflow_version.split(".")[0]
    return newest if older else ""


def decide(gate: Gate, seen: Observation, elapsed: float) -> tuple[Verdict, str]:
    """Migrate, wait or fail after ``elapsed`` seconds of waiting, and the line to log."""
    version = gate.airflow_version
    if seen.heads is not None and database_ahead(gate, seen.heads):
        return Verdict.FAIL, (
            f"the metadata database (revision {', '.join(sorted(seen.heads))}, unknown to"
            f" Airflow {version}) was migrated by a newer Airflow; an older airflow_version"
            f" cannot run on it: downgrade it first with `airflow db downgrade --to-version"
            f" {version}` from the newer version, or deploy the newer version again"
        )
    database_version = older_major(gate, seen.heads)
    if database_version:
        return Verdict.FAIL, (
            f"the metadata database is Airflow {database_version}'s: openmwaa does not upgrade"
            f" Airflow 2 to {version} in place (Airflow 2 workers would run tasks on the new"
            " schema); deploy the previous airflow_version again, and move to Airflow 3 with a"
            " new environment (docs/migration.md)"
        )
    if seen.heads is not None and gate.source_heads and seen.heads == gate.source_heads:
        return Verdict.MIGRATE, (
            "the metadata database is at this Airflow's migration head (another scheduler"
            " migrated it, or only a provider's tables are behind)"
        )
    if seen.alive == ():
        return Verdict.MIGRATE, "no older Airflow component is alive"
    if seen.alive is None:
        what = f"cannot read the metadata database: {seen.error}"
    else:
        what = "alive: " + ", ".join(f"{kind} on {host}" for kind, host in seen.alive)
    if elapsed >= gate.timeout:
        return Verdict.FAIL, (
            f"metadata database not migrated: waited {gate.timeout:.0f} s for older components"
            f" to stop ({what}); ECS starts the scheduler again"
        )
    return Verdict.WAIT, f"waiting for older components to stop ({elapsed:.0f} s): {what}"


def wait(
    gate: Gate,
    observe: Callable[[], Observation],
    log: Callable[[str], None],
    *,
    monotonic: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> tuple[Verdict, str]:
    """Observe every :data:`POLL_SECONDS`, logging each wait, until :func:`decide` says to
    migrate or to fail; returns that verdict and its message. The clock is :mod:`time`'s
    unless given."""
    clock = monotonic or time.monotonic
    started = clock()
    while True:
        verdict, message = decide(gate, observe(), clock() - started)
        if verdict is not Verdict.WAIT:
            return verdict, message
        log(message)
        (sleep or time.sleep)(POLL_SECONDS)


def connector(env: Mapping[str, str]) -> Callable[[], Any]:
    """Connect to the database Airflow uses (``[database] sql_alchemy_conn`` and schema)."""
    import psycopg2  # the image's; only the scheduler's gate needs it

    # postgresql+psycopg2://... -> postgresql://... (the same URL, for libpq)
    url = re.sub(r"^(\w+)\+\w+:", r"\1:", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    schema = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_SCHEMA")
    options = f"-csearch_path={schema}" if schema else None

    def connect() -> Any:
        return psycopg2.connect(url, connect_timeout=10, options=options)

    return connect


def rows(cursor: Any, query: str, params: tuple[Any, ...] | None) -> list[tuple[Any, ...]]:
    """The query's rows; none if its table does not exist (a new database). Any other error
    is raised."""
    try:
        cursor.execute(query, params)
    except Exception as error:
        if getattr(error, "pgcode", None) == UNDEFINED_TABLE:
            return []
        raise
    return [tuple(row) for row in cursor.fetchall()]


def observe(connect: Callable[[], Any]) -> Observation:
    """The database's revisions and its alive components, on a connection of its own in
    autocommit (no transaction left open to block the migration). Errors are returned."""
    try:
        connection = connect()
    except Exception as error:
        return Observation(None, None, repr(error))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            heads = frozenset(row[0] for row in rows(cursor, HEADS_QUERY, None))
            params = (WAITED_JOB_TYPES, ALIVE_WITHIN_SECONDS)
            alive = tuple((str(t), str(h)) for t, h in rows(cursor, ALIVE_QUERY, params))
    except Exception as error:
        return Observation(None, None, repr(error))
    finally:
        connection.close()
    return Observation(heads, alive)


def lock(connect: Callable[[], Any], timeout: float) -> Any:
    """A connection holding :data:`MIGRATION_LOCK_ID`, waited for ``timeout`` seconds at
    most; closing it releases the lock (so does the end of this process). Errors are raised."""
    connection = connect()
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{timeout:.0f}s",))
            cursor.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    except BaseException:
        connection.close()
        raise
    return connection


def airflow_revisions() -> dict[str, str]:
    """The revisions the installed Airflow's migration files define (empty if not found);
    read as text: importing them would import Airflow."""
    spec = importlib.util.find_spec("airflow")
    texts = []
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in glob.glob(os.path.join(root, "migrations", "versions", "*.py")):
            with open(path, encoding="utf-8", errors="replace") as handle:
                texts.append(handle.read())
    return revisions_in(texts)
