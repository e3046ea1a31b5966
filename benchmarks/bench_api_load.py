"""20 concurrent clients on ``GET /api/v2/dags``: does the api-server freeze, and what fixes it.

The real Airflow 3.3.2 of the end-to-end test (``.e2e-cache/airflow-venv-*``, uvicorn server
type, FAB auth manager) runs on a throwaway PostgreSQL (``tests/e2e/localenv.py``) with 20
parsed DAGs. For each configuration below, 20 client threads (keep-alive, bearer token from
``POST /auth/token``) call ``GET /api/v2/dags`` back to back for ``--seconds`` (default 40),
while two probe threads call, once a second, the Task Execution API's ``GET /execution/health``
(what the workers' heartbeats share the server with) and ``GET /api/v2/monitor/health``.

Printed per configuration: req/s (2xx); the core server's CPU time per 2xx request (its whole
process tree, from /proc, probes included); p50/p95/p99/max latency of every finished request;
non-2xx and 500 counts (``+Ncut``: requests still unanswered 32 s after the run's end, cut);
the longest stall (the longest time in the run with no 2xx completing); both probes' p99 and
longest gap without a successful answer; the peak number of PostgreSQL connections of the
Airflow role (both servers); and the RSS and PSS (MiB, whole process tree, from /proc, with the
process count) of the core and the execution server at the end of the run.

CPU: this machine has 2 cores and the servers cannot be given a Fargate task. When the cgroup
v1 ``cpu`` controller is writable (root, as here), each server runs in its own cgroup whose CFS
quota is the task's vCPU (``cpu.cfs_quota_us`` = vCPU x 100 ms per 100 ms period), which is how
the container runtime enforces a task's CPU: mw1.small's web server gets exactly 0.5 vCPU. The
quota is applied once the server answers (start-up is not measured). Otherwise the servers are
pinned to CPU 0 with ``taskset`` (1 vCPU, more than mw1.small has); the script says which.
Memory is not limited, only measured: compare the RSS with the task's memory. PostgreSQL, the
client threads and the probes share the machine's 2 cores with the servers.

Configurations (``--configs`` picks some by name):

- ``a-today``: one ``airflow api-server`` with every app, 1 worker, default pool (5 + 10);
- ``b-split``: ``--apps core`` and a separate ``--apps execution`` server, both defaults;
- ``c-*``: split, the core server sized for mw1.small (0.5 vCPU), workers and pool varied;
- ``d-*``: split, the core server sized for mw1.medium (1 vCPU).

Why it freezes (Airflow 3.3.2): ``GET /api/v2/dags`` is a sync endpoint, run in anyio's
thread pool (40 threads), with a sync ``SessionDep`` whose teardown (returning the connection)
is scheduled back onto the event loop. The bearer-token check is ``async`` but calls
``RevokedToken.is_revoked`` and the FAB user lookup synchronously, on the event loop. When
``pool_size + max_overflow`` (5 + 10) connections are all held by requests waiting for their
teardown, the loop blocks in the pool's checkout, so no teardown can run: nothing moves until
``pool_timeout`` (30 s) raises, which is a 500. Whether a run hits it is a matter of timing, so
one run of a 5 + 10 configuration may freeze and the next may not. With 5 + 40 (more than
the 40 threads endpoints run in, plus the loop's own check-out) no run froze here, also with
``--clients 40`` and ``60``.
``sql_alchemy_engine_args`` sets ``pool_timeout`` (sync engine only): a shorter one only
shortens each freeze, with more 500s (``x-small-w1-t5``).

The execution server always gets 0.5 vCPU, 1 worker and the default pool. ``x-*``
configurations (``EXTRA_CONFIGS``: a shorter pool timeout, a 5 + 15 pool, 2 workers at 1 vCPU,
2 vCPU) run only when named. A full run takes about 7 to 8 minutes. Run:
``.venv/bin/python benchmarks/bench_api_load.py [--seconds 40] [--clients 20]
[--configs a-today,b-split] [--keep]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "constructs"), str(ROOT)]

from tests.e2e.localenv import (  # noqa: E402
    LocalPostgres,
    Process,
    descendants,
    free_port,
    postgres_bin_dir,
    start_process,
)
from tools.airflow_venv import airflow_venv  # noqa: E402

CLIENTS = 20
DAGS = 20
REQUEST_TIMEOUT = 60.0  # the ALB's default idle timeout
END_GRACE = 32.0  # in-flight requests may finish after the run's end (pool_timeout is 30 s)
START_TIMEOUT = 180.0
ADMIN = ("admin", "bench-admin-password")
DB = ("airflow", "bench-db-password", "airflow")
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CFS_PERIOD_US = 100_000

DAG_TEMPLATE = textwrap.dedent(
    """\
    from datetime import datetime

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG(
        dag_id="bench_{n:02d}",
        schedule="@daily",
        start_date=datetime(2025, 1, 1),
        catchup=False,
        tags=["bench", "group_{group}"],
        description="benchmark DAG {n}",
    ):
        previous = None
        for i in range(5):
            task = EmptyOperator(task_id=f"step_{{i}}")
            if previous is not None:
                previous >> task
            previous = task
    """
)


@dataclass(frozen=True)
class ServerSpec:
    """One api-server process: which apps, how many uvicorn workers, pool, CPU."""

    apps: str
    workers: int = 1
    pool_size: int | None = None  # None: Airflow's default (5)
    max_overflow: int | None = None  # None: Airflow's default (10)
    pool_timeout: int | None = None  # None: SQLAlchemy's default (30 s)
    vcpu: float = 0.5

    def describe(self) -> str:
        pool = f"{self.pool_size or 5}+{10 if self.max_overflow is None else self.max_overflow}"
        timeout = f" timeout {self.pool_timeout}s" if self.pool_timeout else ""
        return f"{self.apps}: {self.workers}w pool {pool}{timeout} {self.vcpu:g} vCPU"


@dataclass(frozen=True)
class Config:
    name: str
    core: ServerSpec
    execution: ServerSpec | None  # None: the core server also serves /execution


EXECUTION = ServerSpec(apps="execution")
SMALL_P40 = ServerSpec(apps="core", pool_size=5, max_overflow=40)
CONFIGS = [
    Config("a-today", ServerSpec(apps="all"), None),
    Config("b-split", ServerSpec(apps="core"), EXECUTION),
    Config("c-small-w2", ServerSpec(apps="core", workers=2), EXECUTION),
    Config("c-small-w1-p5+40", SMALL_P40, EXECUTION),
    Config(
        "c-small-w2-p5+40",
        ServerSpec(apps="core", workers=2, pool_size=5, max_overflow=40),
        EXECUTION,
    ),
    Config(
        "d-medium-w1-p5+40",
        ServerSpec(apps="core", pool_size=5, max_overflow=40, vcpu=1.0),
        EXECUTION,
    ),
]
EXTRA_CONFIGS = [  # run only when named in --configs
    Config("x-small-w1-t5", ServerSpec(apps="core", pool_timeout=5), EXECUTION),
    Config("x-small-w1-p5+15", ServerSpec(apps="core", pool_size=5, max_overflow=15), EXECUTION),
    Config(
        "x-medium-w2-p5+40",
        ServerSpec(apps="core", workers=2, pool_size=5, max_overflow=40, vcpu=1.0),
        EXECUTION,
    ),
    Config(
        "x-large-w1-p5+40",
        ServerSpec(apps="core", pool_size=5, max_overflow=40, vcpu=2.0),
        EXECUTION,
    ),
    Config(
        "x-large-w2-p5+40",
        ServerSpec(apps="core", workers=2, pool_size=5, max_overflow=40, vcpu=2.0),
        EXECUTION,
    ),
]


# --- measurements --------------------------------------------------------------------------


@dataclass
class Sample:
    start: float
    end: float
    status: int  # HTTP status; 0: connection error or client timeout


@dataclass
class Result:
    config: Config
    duration: float
    requests: list[Sample]
    unfinished: int
    exec_probe: list[Sample]
    core_probe: list[Sample]
    db_connections_peak: int
    rss_mib: dict[str, tuple[float, float, int]]  # role -> (RSS, PSS, processes)
    core_cpu_seconds: float  # CPU the core server used during the run
    cpu_limit: str
    notes: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def longest_gap(samples: Sequence[Sample], start: float, end: float) -> float:
    """The longest time in [start, end] with no successful (2xx) completion."""
    return gap_window(samples, start, end)[1]


def gap_window(samples: Sequence[Sample], start: float, end: float) -> tuple[float, float]:
    """Where the longest time without a 2xx completion begins, and its length."""
    times = sorted(s.end for s in samples if 200 <= s.status < 300 and start <= s.end <= end)
    edges = [start, *times, end]
    return max(((a, b - a) for a, b in itertools.pairwise(edges)), key=lambda g: g[1])


def tree_memory(pid: int) -> tuple[float, float, int]:
    """RSS and PSS (MiB) summed over ``pid`` and its descendants, and the process count."""
    rss = pss = 0
    pids = [pid, *descendants(pid)]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024, len(pids)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def worker_rss(pid: int) -> list[float]:
    """RSS (MiB) of each process of the tree, root first."""
    values = []
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    values.append(int(line.split()[1]) / 1024)
    return values


# --- HTTP ----------------------------------------------------------------------------------


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_http_ok(port: int, path: str, timeout: float, what: str, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{proc.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_call(port, "GET", path, timeout=5)[0] == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not answer {path} within {timeout:.0f} s:\n{proc.log_tail()}")


def get_token(port: int) -> str:
    body = json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode()
    status, data = http_call(
        port, "POST", "/auth/token", body, {"Content-Type": "application/json"}, timeout=60
    )
    if status not in (200, 201):
        raise RuntimeError(f"POST /auth/token: HTTP {status}: {data[:300]!r}")
    token: str = json.loads(data)["access_token"]
    return token


class LoadClients:
    """``clients`` threads calling one path back to back on keep-alive connections."""

    def __init__(self, port: int, path: str, token: str, clients: int = CLIENTS) -> None:
        self.port, self.path = port, path
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.connections: dict[int, http.client.HTTPConnection] = {}
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)
        ]

    def _connect(self, i: int) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        self.connections[i] = conn
        return conn

    def _run(self, i: int) -> None:
        conn = self._connect(i)
        while not self.stop.is_set():
            start = time.monotonic()
            status = 0
            try:
                conn.request("GET", self.path, headers=self.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = self._connect(i)
            except (OSError, http.client.HTTPException):
                conn.close()
                if self.stop.is_set():
                    return  # cut at the run's end: not a sample
                conn = self._connect(i)
            self.samples.append(Sample(start, time.monotonic(), status))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> int:
        """Stop; wait END_GRACE s for requests in flight, then cut them. Returns how many
        were cut."""
        self.stop.set()
        deadline = time.monotonic() + END_GRACE
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        cut = 0
        for i, thread in enumerate(self.threads):
            if thread.is_alive():
                cut += 1
                sock = self.connections[i].sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(5)
        return cut


class Probe:
    """One GET a second (the next starts at once if one took longer than a second)."""

    def __init__(self, port: int, path: str) -> None:
        self.port, self.path = port, path
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            status = 0
            with contextlib.suppress(OSError, http.client.HTTPException):
                status = http_call(self.port, "GET", self.path, timeout=REQUEST_TIMEOUT)[0]
            end = time.monotonic()
            self.samples.append(Sample(start, end, status))
            self.stop.wait(max(0.0, 1.0 - (end - start)))

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(END_GRACE + 5)


class ConnectionSampler:
    """Peak of PostgreSQL connections of the Airflow role, sampled every second."""

    def __init__(self, pg: LocalPostgres) -> None:
        self.pg = pg
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{DB[0]}'"
        while not self.stop.wait(1.0):
            with contextlib.suppress(subprocess.CalledProcessError, ValueError):
                self.peak = max(self.peak, int(self.pg.sql(query).strip()))

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


# --- CPU limits ----------------------------------------------------------------------------


def cgroups_usable() -> bool:
    probe = CGROUP_CPU / f"openmwaa-bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        (probe / "cpu.cfs_quota_us").write_text("50000")
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


class CpuLimit:
    """A cgroup v1 ``cpu`` group with a CFS quota of ``vcpu`` CPUs, or ``taskset -c 0``."""

    def __init__(self, name: str, vcpu: float, use_cgroup: bool) -> None:
        self.vcpu = vcpu
        self.path: Path | None = None
        if use_cgroup:
            self.path = CGROUP_CPU / f"openmwaa-bench-{os.getpid()}-{name}"
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` started inside the group (before it forks its workers)."""
        if self.path is None:
            return ["taskset", "-c", "0", *argv]
        procs = self.path / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]

    def apply(self) -> str:
        """Enforce the quota (start-up ran unlimited); returns what was done."""
        if self.path is None:
            return "taskset CPU 0"
        (self.path / "cpu.cfs_quota_us").write_text(str(int(self.vcpu * CFS_PERIOD_US)))
        return f"cgroup {self.vcpu:g} vCPU"

    def remove(self) -> None:
        if self.path is None:
            return
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


# --- Airflow -------------------------------------------------------------------------------


@dataclass
class Bench:
    venv: Path
    work: Path
    pg: LocalPostgres
    use_cgroup: bool
    timings: str = ""

    @property
    def airflow(self) -> str:
        return str(self.venv / "bin" / "airflow")

    def env(self, spec: ServerSpec | None = None) -> dict[str, str]:
        user, password, dbname = DB
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(self.work / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.work / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW__CORE__FERNET_KEY": "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{self.pg.port}/{dbname}"
            ),
            "AIRFLOW__API_AUTH__JWT_SECRET": "j" * 40,
            "AIRFLOW__API__SECRET_KEY": "k" * 40,
        }
        if spec is not None:
            if spec.pool_size is not None:
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE"] = str(spec.pool_size)
            if spec.max_overflow is not None:
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW"] = str(spec.max_overflow)
            if spec.pool_timeout is not None:
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_ENGINE_ARGS"] = json.dumps(
                    {"pool_timeout": spec.pool_timeout}
                )
        return env

    def run(self, args: Sequence[str], stdin: str | None = None, timeout: float = 300) -> None:
        out = subprocess.run(
            [self.airflow, *args],
            env=self.env(),
            cwd=str(self.work),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)}: exit {out.returncode}\n{out.stderr}")

    def prepare(self) -> None:
        dags = self.work / "dags"
        dags.mkdir()
        for n in range(DAGS):
            (dags / f"bench_{n:02d}.py").write_text(DAG_TEMPLATE.format(n=n, group=n % 4))
        password = f"{ADMIN[1]}\n{ADMIN[1]}\n"
        user = ["users", "create", "--username", ADMIN[0], "--role", "Admin"]
        user += ["--firstname", "A", "--lastname", "B", "--email", "admin@example.com"]
        steps: list[tuple[str, list[str], str | None]] = [
            ("db migrate", ["db", "migrate"], None),
            ("users create", user, password),
            ("dags reserialize", ["dags", "reserialize"], None),
        ]
        took = []
        for label, args, stdin in steps:
            began = time.monotonic()
            self.run(args, stdin=stdin)
            took.append(f"{label} {time.monotonic() - began:.0f} s")
        self.timings = ", ".join(took)

    def start_server(self, name: str, spec: ServerSpec, limit: CpuLimit) -> tuple[Process, int]:
        port = free_port()
        argv = [self.airflow, "api-server", "--apps", spec.apps, "--port", str(port)]
        argv += ["--host", "127.0.0.1", "--workers", str(spec.workers)]
        log = self.work / "logs" / f"{name}.log"
        proc = start_process(name, limit.wrap(argv), self.env(spec), log, cwd=str(self.work))
        return proc, port


def wait_workers(proc: Process, workers: int, timeout: float) -> None:
    """Wait until every uvicorn worker logged its start-up (a request may otherwise be
    accepted only by the first worker ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.log_text().count("Application startup complete") >= workers:
            return
        time.sleep(0.5)


def run_config(bench: Bench, config: Config, seconds: float, clients: int) -> Result:
    limits: list[CpuLimit] = []
    procs: list[Process] = []
    try:
        core_limit = CpuLimit(f"{config.name}-core", config.core.vcpu, bench.use_cgroup)
        limits.append(core_limit)
        core, core_port = bench.start_server(f"{config.name}-core", config.core, core_limit)
        procs.append(core)
        exec_proc: Process | None = None
        exec_port = core_port
        exec_limit: CpuLimit | None = None
        if config.execution is not None:
            exec_limit = CpuLimit(f"{config.name}-exec", config.execution.vcpu, bench.use_cgroup)
            limits.append(exec_limit)
            exec_proc, exec_port = bench.start_server(
                f"{config.name}-exec", config.execution, exec_limit
            )
            procs.append(exec_proc)
        wait_http_ok(core_port, "/api/v2/monitor/health", START_TIMEOUT, "core server", core)
        wait_workers(core, config.core.workers, 60)
        # Also where the core server serves /execution: the first call there costs about 3.5 s
        # of CPU (once per process) and holds the event loop; warm it before the quota.
        wait_http_ok(exec_port, "/execution/health", START_TIMEOUT, "execution", exec_proc or core)
        token = get_token(core_port)
        status, body = http_call(
            core_port, "GET", "/api/v2/dags", headers={"Authorization": f"Bearer {token}"}
        )
        total = json.loads(body).get("total_entries") if status == 200 else None
        if total != DAGS:
            raise RuntimeError(f"GET /api/v2/dags: HTTP {status}, total_entries {total}")
        for _ in range(4 * config.core.workers):  # warm every worker's caches a little
            http_call(
                core_port, "GET", "/api/v2/dags", headers={"Authorization": f"Bearer {token}"}
            )
        cpu = core_limit.apply()
        if exec_limit is not None:
            exec_limit.apply()

        load = LoadClients(core_port, "/api/v2/dags", token, clients)
        exec_probe = Probe(exec_port, "/execution/health")
        core_probe = Probe(core_port, "/api/v2/monitor/health")
        sampler = ConnectionSampler(bench.pg)
        cpu_before = tree_cpu_seconds(core.popen.pid)
        started = time.monotonic()
        for part in (exec_probe, core_probe, sampler, load):
            part.start()
        time.sleep(seconds)
        ended = time.monotonic()
        core_cpu = tree_cpu_seconds(core.popen.pid) - cpu_before
        rss = {"core": tree_memory(core.popen.pid)}
        if exec_proc is not None:
            rss["exec"] = tree_memory(exec_proc.popen.pid)
        per_process = worker_rss(core.popen.pid)
        unfinished = load.finish()
        for part in (exec_probe, core_probe, sampler):
            part.finish()
        samples = [s for s in load.samples if s.end <= ended + END_GRACE]
        at, length = gap_window(load.samples, started, ended)
        notes = [
            "core RSS per process MiB: " + ", ".join(f"{v:.0f}" for v in per_process),
            f"longest stall {length:.1f} s from t={at - started:.1f} s",
        ]
        return Result(
            config=config,
            duration=ended - started,
            requests=[Sample(s.start - started, s.end - started, s.status) for s in samples],
            unfinished=unfinished,
            exec_probe=[
                Sample(s.start - started, s.end - started, s.status) for s in exec_probe.samples
            ],
            core_probe=[
                Sample(s.start - started, s.end - started, s.status) for s in core_probe.samples
            ],
            db_connections_peak=sampler.peak,
            rss_mib=rss,
            core_cpu_seconds=core_cpu,
            cpu_limit=cpu,
            notes=notes,
        )
    finally:
        stoppers = [threading.Thread(target=proc.stop, kwargs={"grace": 3}) for proc in procs]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for limit in limits:
            limit.remove()


# --- report --------------------------------------------------------------------------------


def summarize(result: Result) -> dict[str, str]:
    duration = result.duration
    done = result.requests
    ok = [s for s in done if 200 <= s.status < 300 and s.end <= duration]
    latencies = [s.end - s.start for s in done]
    exec_lat = [s.end - s.start for s in result.exec_probe]
    core_lat = [s.end - s.start for s in result.core_probe]

    def ms(values: Sequence[float], pct: float) -> str:
        return f"{percentile(values, pct) * 1000:.0f}" if values else "-"

    def mib(role: str) -> str:
        if role not in result.rss_mib:
            return "-"
        rss, pss, count = result.rss_mib[role]
        return f"{rss:.0f}/{pss:.0f} ({count}p)"

    non_2xx = [s for s in done if not 200 <= s.status < 300]
    return {
        "config": result.config.name,
        "req/s": f"{len(ok) / duration:.1f}",
        "CPU ms/req": f"{result.core_cpu_seconds * 1000 / len(ok):.0f}" if ok else "-",
        "p50 ms": ms(latencies, 50),
        "p95 ms": ms(latencies, 95),
        "p99 ms": ms(latencies, 99),
        "max ms": f"{max(latencies) * 1000:.0f}" if latencies else "-",
        "non2xx": f"{len(non_2xx)}+{result.unfinished}cut"
        if result.unfinished
        else str(len(non_2xx)),
        "500s": str(sum(1 for s in done if s.status == 500)),
        "stall s": f"{longest_gap(done, 0.0, duration):.1f}",
        "exec p99 ms": ms(exec_lat, 99),
        "exec gap s": f"{longest_gap(result.exec_probe, 0.0, duration):.1f}",
        "health p99 ms": ms(core_lat, 99),
        "health gap s": f"{longest_gap(result.core_probe, 0.0, duration):.1f}",
        "db conns": str(result.db_connections_peak),
        "core RSS/PSS MiB": mib("core"),
        "exec RSS/PSS MiB": mib("exec"),
    }


def print_table(rows: Sequence[Mapping[str, str]]) -> None:
    if not rows:
        return
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    print("  ".join(h.ljust(widths[h]) for h in headers))
    for row in rows:
        print("  ".join(row[h].ljust(widths[h]) for h in headers))


@contextlib.contextmanager
def environment(keep: bool) -> Iterator[Bench]:
    venv = airflow_venv()
    work = Path(tempfile.mkdtemp(prefix="openmwaa-bench-api-"))
    pg = LocalPostgres(postgres_bin_dir())
    try:
        pg.start()
        pg.create_login(*DB)
        bench = Bench(venv=venv, work=work, pg=pg, use_cgroup=cgroups_usable())
        bench.prepare()
        yield bench
    finally:
        pg.stop()
        if keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=40.0, help="load per configuration")
    parser.add_argument("--configs", default="", help="comma-separated names (default: all)")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs")
    args = parser.parse_args(argv)
    wanted = [c for c in args.configs.split(",") if c]
    known = {c.name: c for c in [*CONFIGS, *EXTRA_CONFIGS]}
    configs = [known[name] for name in wanted if name in known] if wanted else CONFIGS
    unknown = set(wanted) - set(known)
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")

    began = time.monotonic()
    rows: list[dict[str, str]] = []
    with environment(args.keep) as bench:
        print(
            f"set-up {time.monotonic() - began:.0f} s; CPU limits: "
            + ("cgroup v1 CFS quota" if bench.use_cgroup else "taskset -c 0 (no cgroup)")
            + f"; {args.clients} clients x {args.seconds:g} s per configuration; "
            + bench.timings,
            flush=True,
        )
        for config in configs:
            result = run_config(bench, config, args.seconds, args.clients)
            row = summarize(result)
            rows.append(row)
            specs = config.core.describe()
            if config.execution is not None:
                specs += "; " + config.execution.describe()
            print(f"{config.name}: {specs}; {result.cpu_limit}; " + "; ".join(result.notes))
            print("  " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "config"), flush=True)
    print()
    print_table(rows)
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
