"""What each Airflow component needs, measured under the end-to-end load, and the Fargate sizes
that follow: the evidence for sizing the control plane.

How it runs: exactly as the end-to-end test boots an environment (``tests/e2e/running.py``
``boot``): the bundled app's template is synthesized (Airflow 3.3.2, mw1.small), a moto server
gets its resources, a throwaway PostgreSQL is the metadata database, and every component the
template defines (scheduler, dag-processor, triggerer, api-server, execution-api, Celery worker)
starts from its container definition under the real Airflow of the e2e
(``.e2e-cache/airflow-venv-*``). The sync root is the e2e's fixture (``tests/e2e/sync``) plus
30 load DAGs (``openmwaa_load_00`` .. ``_29``, no schedule, unpaused), copied in before boot as
the e2e copies its fixture. Then:

1. **idle** (``--idle``, default 180 s, after the environment is healthy and has parsed the 30
   DAGs, plus ``--settle`` s): nothing runs; the dag-processor re-parses the 33 files.
2. **load** (until every load run finishes, at most ``--load``, default 300 s): all 30 DAGs are
   triggered at once. Each run has four tasks (``extract``, two ``transform``, ``load``; small
   Python work, sleeps, XComs through the Task Execution API); ten DAGs add a deferrable
   ``WaitSensor`` (60 s, ends in the triggerer) and ten a ``DateTimeSensorAsync`` (60 s,
   resumes on the worker): 140 task instances, 20 deferrals. Meanwhile a UI client calls
   ``GET /api/v2/dags`` and ``GET /api/v2/dags/~/dagRuns`` ``--ui-rate`` times a second each
   (default 2), and the script polls the runs' states every 5 s.

Every 5 s (``--interval``) each component's whole process tree (the container's processes:
dumb-init, the runtime, Airflow and everything it forked) is read from /proc: RSS, PSS and
anonymous PSS (MiB, ``smaps_rollup``), CPU seconds (utime + stime + cutime + cstime of every
live process, so children that exited and were reaped inside the tree still count), and the
number of processes. The local PostgreSQL is sampled the same way, as context for Aurora (it is
not sized). Printed:

- per component and phase: peak RSS, PSS and anonymous PSS; mean, p95 and max CPU in vCPU (CPU
  seconds per wall second between consecutive samples); processes (min-max);
- the smallest valid Fargate size (``FARGATE_TASK_SIZES``, cheapest at ARM prices) that fits
  each component by the headroom rule: memory >= 1.5 x peak PSS, CPU >= max(0.25, 2 x p95
  vCPU), both over the two phases; next to what mw1.small gives it today
  (``EnvironmentClassSpec``) and the template's counts;
- the monthly Fargate ARM price (us-east-1: $0.03238 per vCPU-hour, $0.00356 per GB-hour,
  730 hours) of three layouts: today's sizes; (L2) one service per component, measured sizes;
  (L1) scheduler + dag-processor + triggerer as containers of one task and api-server +
  execution-api as containers of one task, each sized by the per-sample sum of its members
  (the samples are simultaneous), at today's counts: the scheduler task runs as many copies as
  there are schedulers, so the dag-processor and triggerer run that many times. Each layout is
  also priced with CPU sized on the mean instead of the p95 (max(0.25, 2 x mean vCPU)): what
  bursty components (the dag-processor's parse cycles) cost if their bursts may run slower.

Caveats:

- Airflow is the PyPI build of the e2e, under the local Python, not the stock image; processes
  run on this machine, not in Fargate's microVMs. The ``LOCAL_SUBSTITUTIONS`` of
  tests/e2e/provision.py apply (moto stands in for SQS, S3, Secrets Manager and CloudWatch Logs).
- PSS splits each shared page between the processes that map it. Pages shared inside a tree
  (forked workers) are counted once, as in a container; file pages shared with another
  component (the same venv's libraries) are split between them, which in a task of its own they
  would not be, so a container's memory lies between the tree's PSS and its RSS (which counts
  a forked page once per process that maps it). Anonymous PSS is the part that cannot be
  reclaimed.
- This machine has 2 cores, shared with other work (other test runs): CPU seconds are
  meaningful (a process's CPU time is what it used, whoever else ran), wall-clock latencies and
  durations are not, and a component that wanted more CPU than it got during a contended
  interval shows a lower peak than it would alone. The 1-minute load average is printed.
- One copy of each component runs here; mw1.small runs 2 schedulers (each does part of the
  scheduling work), 2 api-servers and 2 execution-api servers. The measured scheduler did all
  of it, so its figure is an upper bound for each of two.
- The load is one burst of 30 runs on one worker (5 task slots), not a day's workload.

Run (as root, as the e2e: components run in mount namespaces; about 10 to 12 minutes):
``.venv/bin/python benchmarks/measure_components.py [--idle 180] [--load 300] [--keep]``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import math
import os
import re
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "constructs"), str(ROOT)]

from openmwaa.environment_class import (  # noqa: E402
    FARGATE_TASK_SIZES,
    EnvironmentClassSpec,
    TaskSize,
    spec_for,
)
from openmwaa.runtime import contracts  # noqa: E402
from tests.e2e.cfn import resources_of_type, task_specs  # noqa: E402
from tests.e2e.localenv import LocalPostgres, postgres_bin_dir  # noqa: E402
from tests.e2e.running import SYNC_FIXTURE, AirflowUnderTest, boot, shut_down  # noqa: E402
from tools.airflow_venv import airflow_venv  # noqa: E402

VCPU_HOUR = 0.03238  # Fargate Linux/ARM, us-east-1, per vCPU-hour
GB_HOUR = 0.00356  # Fargate Linux/ARM, us-east-1, per GB-hour
HOURS = 730
MEMORY_HEADROOM = 1.5  # memory >= 1.5 x peak PSS
CPU_HEADROOM = 2.0  # CPU >= 2 x p95 vCPU
MIN_VCPU = 0.25

LOAD_DAGS = 30
LOAD_PREFIX = "openmwaa_load_"
SENSOR_SECONDS = 60
PARSE_TIMEOUT = 300.0

L1_GROUPS: dict[str, tuple[str, ...]] = {
    "scheduler+dag-processor+triggerer": ("scheduler", "dag-processor", "triggerer"),
    "api-server+execution-api": ("api-server", "execution-api"),
    "worker": ("worker",),
}
"""Layout L1: containers that share a task; the task runs as many copies as its first member."""

DAG_TEMPLATE = textwrap.dedent(
    '''\
    """Load DAG {n} of benchmarks/measure_components.py: {kind}."""

    from __future__ import annotations

    import time
    from datetime import datetime, timedelta

    from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
    from airflow.providers.standard.sensors.time_delta import WaitSensor
    from airflow.sdk import dag, task

    KIND = "{kind}"


    @dag(
        dag_id="{prefix}{n:02d}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        tags=["load", KIND],
    )
    def load_{n:02d}() -> None:
        @task
        def extract() -> list[int]:
            time.sleep(2)
            return list(range({n} * 100, {n} * 100 + 500))

        @task
        def transform(rows: list[int], factor: int) -> int:
            total = sum(r * factor for r in rows for _ in range(200))
            time.sleep(3)
            return total

        @task
        def load(a: int, b: int) -> str:
            print("loaded", a + b)
            return "done"

        rows = extract()
        first = transform(rows, 2)
        second = transform.override(task_id="transform_b")(rows, 3)
        done = load(first, second)
        if KIND == "wait-sensor":
            wait = WaitSensor(
                task_id="wait", time_to_wait=timedelta(seconds={sensor}), deferrable=True
            )
            wait >> done
        elif KIND == "datetime-sensor":
            wait = DateTimeSensorAsync(
                task_id="wait",
                target_time=(
                    "{{{{ (macros.datetime.utcnow()"
                    " + macros.timedelta(seconds={sensor})).isoformat() }}}}"
                ),
            )
            wait >> done


    load_{n:02d}()
    '''
)
KINDS = ("plain", "wait-sensor", "datetime-sensor")


def write_load_dags(dags_dir: Path) -> list[str]:
    """The 30 load DAG files; returns their DAG ids."""
    dags_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for n in range(LOAD_DAGS):
        text = DAG_TEMPLATE.format(
            n=n, kind=KINDS[n % 3], prefix=LOAD_PREFIX, sensor=SENSOR_SECONDS
        )
        (dags_dir / f"{LOAD_PREFIX}{n:02d}.py").write_text(text)
        ids.append(f"{LOAD_PREFIX}{n:02d}")
    return ids


# --- the template --------------------------------------------------------------------------


def synthesized_template() -> dict[str, Any]:
    """The bundled app's template, as the e2e's ``default_template`` fixture makes it."""
    bin_dir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bin_dir):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from aws_cdk import assertions

    from tests.stacks import bundled_stack

    return dict(assertions.Template.from_stack(bundled_stack()).to_json())


def environment_metadata(template: Mapping[str, Any]) -> dict[str, Any]:
    """The ``openmwaa:environment`` metadata of the template (class, counts)."""
    for resource in template["Resources"].values():
        metadata = resource.get("Metadata", {})
        if contracts.ENVIRONMENT_METADATA_KEY in metadata:
            return dict(metadata[contracts.ENVIRONMENT_METADATA_KEY])
    raise SystemExit(f"the template has no {contracts.ENVIRONMENT_METADATA_KEY} metadata")


@dataclass(frozen=True)
class Deployed:
    """What the template runs for a component: its task's size and the service's count."""

    size: TaskSize
    count: int


def deployed_components(template: Mapping[str, Any], min_workers: int) -> dict[str, Deployed]:
    """Each component's task size and desired count in the template (a service without a
    DesiredCount, the worker's, is scaled by the autoscaler from ``min_workers``)."""
    counts: dict[str, int] = {}
    for service in resources_of_type(dict(template), "AWS::ECS::Service").values():
        props = service.get("Properties", {})
        task = props.get("TaskDefinition", {}).get("Ref")
        if task:
            counts[task] = int(props.get("DesiredCount", min_workers))
    result: dict[str, Deployed] = {}
    for task in task_specs(dict(template)):
        props = template["Resources"][task.logical_id]["Properties"]
        size = TaskSize(cpu=int(props["Cpu"]), memory_mib=int(props["Memory"]))
        for container in task.containers:
            if container.component and task.logical_id in counts:
                result.setdefault(container.component, Deployed(size, counts[task.logical_id]))
    return result


def class_size(spec: EnvironmentClassSpec, component: str) -> TaskSize:
    """The size the environment class gives ``component``."""
    sizes = {
        "scheduler": spec.scheduler,
        "dag-processor": spec.dag_processor,
        "triggerer": spec.triggerer,
        "api-server": spec.webserver,
        "execution-api": spec.execution_api,
        "worker": spec.worker,
    }
    return sizes[component]


# --- /proc sampling ------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    """One process tree at one instant."""

    rss: float  # MiB
    pss: float  # MiB
    pss_anon: float  # MiB
    cpu: float  # CPU seconds, reaped children included
    processes: int

    def __add__(self, other: Reading) -> Reading:
        return Reading(
            self.rss + other.rss,
            self.pss + other.pss,
            self.pss_anon + other.pss_anon,
            self.cpu + other.cpu,
            self.processes + other.processes,
        )


ZERO = Reading(0.0, 0.0, 0.0, 0.0, 0)


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    table: dict[int, tuple[int, float]] = {}
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as f:
                text = f.read()
            fields = text.rsplit(")", 1)[1].split()
            ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            table[int(text.split(" ", 1)[0])] = (int(fields[1]), ticks / CLOCK_TICKS)
        except (OSError, IndexError, ValueError):
            continue
    return table


def tree(root: int, table: Mapping[int, tuple[int, float]]) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = [root] if root in table else []
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def read_tree(root: int, table: Mapping[int, tuple[int, float]]) -> Reading:
    """RSS, PSS, anonymous PSS and CPU seconds of ``root``'s tree."""
    pids = tree(root, table)
    kib = {"Rss:": 0, "Pss:": 0, "Pss_Anon:": 0}
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key = line.split(" ", 1)[0]
                if key in kib:
                    kib[key] += int(line.split()[1])
    return Reading(
        rss=kib["Rss:"] / 1024,
        pss=kib["Pss:"] / 1024,
        pss_anon=kib["Pss_Anon:"] / 1024,
        cpu=sum(table[p][1] for p in pids),
        processes=len(pids),
    )


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    phase: str
    readings: dict[str, Reading]
    load_average: float


@dataclass
class Sampler:
    """Reads every root's tree every ``interval`` s, tagging each sample with the phase."""

    roots: dict[str, int]
    interval: float
    phase: str = ""
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def sample(self) -> None:
        table = process_table()
        readings = {name: read_tree(pid, table) for name, pid in self.roots.items()}
        self.samples.append(Sample(time.monotonic(), self.phase, readings, os.getloadavg()[0]))

    def run(self) -> None:
        due = time.monotonic()
        while not self.stop.is_set():
            if self.phase:
                self.sample()
            due += self.interval
            self.stop.wait(max(0.0, due - time.monotonic()))

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def begin(self, phase: str) -> None:
        """Start a phase with a sample now (the first point of its first interval)."""
        self.phase = phase
        self.sample()

    def end(self) -> None:
        """End the phase with a sample now."""
        self.sample()
        self.phase = ""

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)


# --- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Stats:
    """A unit's (a component's, or the containers of one task's) figures over a phase."""

    rss: float
    pss: float
    pss_anon: float
    mean_vcpu: float
    p95_vcpu: float
    max_vcpu: float
    cpu_seconds: float
    processes: tuple[int, int]
    intervals: int


def unit_stats(samples: Sequence[Sample], members: Sequence[str]) -> Stats:
    """Peaks and CPU of the sum of ``members`` over ``samples`` (one phase)."""
    series = [(s.at, sum((s.readings[m] for m in members), ZERO)) for s in samples]
    rates = []
    cpu_total = wall_total = 0.0
    for (t0, r0), (t1, r1) in itertools.pairwise(series):
        used = max(0.0, r1.cpu - r0.cpu)  # a reaper that left the tree takes its children's
        rates.append(used / (t1 - t0))
        cpu_total += used
        wall_total += t1 - t0
    counts = [r.processes for _, r in series]
    return Stats(
        rss=max(r.rss for _, r in series),
        pss=max(r.pss for _, r in series),
        pss_anon=max(r.pss_anon for _, r in series),
        mean_vcpu=cpu_total / wall_total if wall_total else 0.0,
        p95_vcpu=percentile(rates, 95) if rates else 0.0,
        max_vcpu=max(rates, default=0.0),
        cpu_seconds=cpu_total,
        processes=(min(counts), max(counts)),
        intervals=len(rates),
    )


def phase_samples(samples: Sequence[Sample], phase: str) -> list[Sample]:
    return [s for s in samples if s.phase == phase]


# --- sizing --------------------------------------------------------------------------------


def monthly(size: TaskSize, count: int) -> float:
    """Fargate ARM on-demand price of ``count`` always-on tasks of ``size`` for 730 hours."""
    vcpu, gb = size.cpu / 1024, size.memory_mib / 1024
    return float(count * HOURS * (vcpu * VCPU_HOUR + gb * GB_HOUR))


def smallest_size(vcpu: float, memory_mib: float) -> TaskSize:
    """The cheapest valid Fargate size with at least ``vcpu`` and ``memory_mib``."""
    fits = [
        TaskSize(cpu, memory)
        for cpu, memories in FARGATE_TASK_SIZES.items()
        for memory in memories
        if cpu >= vcpu * 1024 - 1e-6 and memory >= memory_mib
    ]
    if not fits:
        raise SystemExit(f"no Fargate size has {vcpu:.2f} vCPU and {memory_mib:.0f} MiB")
    return min(fits, key=lambda s: (monthly(s, 1), s.cpu, s.memory_mib))


@dataclass(frozen=True)
class Need:
    """What the headroom rule asks of a unit, from its figures over both phases."""

    peak_pss: float
    p95_vcpu: float
    mean_vcpu: float

    @property
    def memory_mib(self) -> float:
        return MEMORY_HEADROOM * self.peak_pss

    @property
    def vcpu(self) -> float:
        return max(MIN_VCPU, CPU_HEADROOM * self.p95_vcpu)

    @property
    def size(self) -> TaskSize:
        return smallest_size(self.vcpu, self.memory_mib)

    @property
    def size_on_mean(self) -> TaskSize:
        """The size if CPU followed the mean instead of the p95 (bursts then run slower)."""
        return smallest_size(max(MIN_VCPU, CPU_HEADROOM * self.mean_vcpu), self.memory_mib)


def need_of(samples: Sequence[Sample], members: Sequence[str], phases: Sequence[str]) -> Need:
    stats = [unit_stats(phase_samples(samples, p), members) for p in phases]
    return Need(
        max(s.pss for s in stats),
        max(s.p95_vcpu for s in stats),
        max(s.mean_vcpu for s in stats),
    )


def describe(size: TaskSize) -> str:
    return f"{size.cpu / 1024:g} vCPU/{size.memory_mib / 1024:g} GB"


# --- load ----------------------------------------------------------------------------------


@dataclass
class UiClient:
    """A modest UI: ``GET /api/v2/dags`` and ``GET /api/v2/dags/~/dagRuns``, ``rate`` times a
    second each, one request at a time."""

    env: AirflowUnderTest
    rate: float
    ok: int = 0
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        paths = ("/api/v2/dags?limit=100", "/api/v2/dags/~/dagRuns?limit=50&order_by=-id")
        due = time.monotonic()
        while not self.stop.is_set():
            for path in paths:
                try:
                    self.env.request("GET", path)
                    self.ok += 1
                except (urllib.error.URLError, OSError, ValueError):
                    self.failed += 1
            due += 1 / self.rate
            self.stop.wait(max(0.0, due - time.monotonic()))

    def start(self) -> None:
        self.env.token()  # fetched once, here, not by the thread
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(70)


def load_run_states(env: AirflowUnderTest) -> dict[str, int]:
    """How many load runs are in each state."""
    body = env.request(
        "GET", f"/api/v2/dags/~/dagRuns?dag_id_prefix_pattern={LOAD_PREFIX}&limit=100"
    )
    states: dict[str, int] = {}
    for run in body["dag_runs"]:
        states[run["state"]] = states.get(run["state"], 0) + 1
    return states


def wait_parsed(env: AirflowUnderTest, dag_ids: Sequence[str]) -> None:
    def parsed() -> bool:
        body = env.request("GET", f"/api/v2/dags?dag_id_pattern={LOAD_PREFIX}&limit=100")
        return {d["dag_id"] for d in body["dags"]} >= set(dag_ids)

    env.wait_for(f"the {len(dag_ids)} load DAGs to be parsed", parsed, PARSE_TIMEOUT, interval=5)


def task_instance_counts(env: AirflowUnderTest) -> dict[str, int]:
    """Task instances of the load DAGs by state (the fixture's DAGs never run here)."""
    counts: dict[str, int] = {}
    for state in ("success", "failed", "upstream_failed", "deferred", "running", "queued"):
        body = env.request(
            "GET",
            f"/api/v2/dags/~/dagRuns/~/taskInstances?dag_id_prefix_pattern={LOAD_PREFIX}"
            f"&state={state}&limit=1",
        )
        if body["total_entries"]:
            counts[state] = int(body["total_entries"])
    return counts


@dataclass
class LoadResult:
    seconds: float
    finished: bool
    states: dict[str, int]
    tasks: dict[str, int]
    ui_ok: int
    ui_failed: int
    peak_triggers: int


def run_load(
    env: AirflowUnderTest, sampler: Sampler, dag_ids: Sequence[str], limit: float, ui_rate: float
) -> LoadResult:
    ui = UiClient(env, ui_rate)
    sampler.begin("load")
    started = time.monotonic()
    ui.start()
    try:
        for dag_id in dag_ids:
            env.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
        finished = False
        states: dict[str, int] = {}
        while time.monotonic() - started < limit:
            time.sleep(5)
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                states = load_run_states(env)
            if sum(states.get(s, 0) for s in ("success", "failed")) >= len(dag_ids):
                finished = True
                break
        seconds = time.monotonic() - started
    finally:
        ui.finish()
        sampler.end()
    running = re.findall(r"(\d+) triggers currently running", env.processes["triggerer"].log_text())
    return LoadResult(
        seconds=seconds,
        finished=finished,
        states=states,
        tasks=task_instance_counts(env),
        ui_ok=ui.ok,
        ui_failed=ui.failed,
        peak_triggers=max((int(n) for n in running), default=0),
    )


# --- report --------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def report_components(
    samples: Sequence[Sample], units: Sequence[str], phases: Sequence[str]
) -> None:
    headers = ["component", "phase", "peak RSS", "peak PSS", "peak anon", "mean vCPU"]
    headers += ["p95 vCPU", "max vCPU", "CPU s", "procs", "intervals"]
    rows = []
    for unit in units:
        for phase in phases:
            s = unit_stats(phase_samples(samples, phase), [unit])
            rows.append(
                [
                    unit,
                    phase,
                    f"{s.rss:.0f}",
                    f"{s.pss:.0f}",
                    f"{s.pss_anon:.0f}",
                    f"{s.mean_vcpu:.3f}",
                    f"{s.p95_vcpu:.3f}",
                    f"{s.max_vcpu:.3f}",
                    f"{s.cpu_seconds:.0f}",
                    f"{s.processes[0]}-{s.processes[1]}",
                    str(s.intervals),
                ]
            )
    print("Per component and phase (memory in MiB, whole process tree; vCPU = CPU s / wall s):")
    print_table(headers, rows)


def report_sizing(
    samples: Sequence[Sample],
    components: Sequence[str],
    deployed: Mapping[str, Deployed],
    spec: EnvironmentClassSpec,
    phases: Sequence[str],
) -> None:
    print(
        f"\nSizing rule: memory >= {MEMORY_HEADROOM:g} x peak PSS, CPU >= max({MIN_VCPU:g}, "
        f"{CPU_HEADROOM:g} x p95 vCPU), both over {' and '.join(phases)}; the cheapest valid "
        "Fargate size that fits.\nPrices: Fargate Linux/ARM us-east-1, "
        f"${VCPU_HOUR}/vCPU-h, ${GB_HOUR}/GB-h, {HOURS} h a month."
    )
    today_total = l2_total = l2_mean = 0.0
    rows = []
    for component in components:
        need = need_of(samples, [component], phases)
        today = class_size(spec, component)
        count = deployed[component].count
        note = "" if deployed[component].size == today else f" (template {describe(today)})"
        today_total += monthly(today, count)
        l2_total += monthly(need.size, count)
        l2_mean += monthly(need.size_on_mean, count)
        rows.append(
            [
                component,
                str(count),
                f"{need.peak_pss:.0f}",
                f"{need.p95_vcpu:.3f}",
                f"{need.vcpu:.2f} vCPU/{need.memory_mib:.0f} MiB",
                describe(need.size),
                f"${monthly(need.size, count):.2f}",
                describe(today) + note,
                f"${monthly(today, count):.2f}",
            ]
        )
    print(f"\nLayout L2 (one service per component) against {spec.name} today:")
    headers = ["component", "count", "peak PSS", "p95 vCPU", "rule asks", "measured size"]
    headers += ["monthly", f"{spec.name} today", "monthly"]
    print_table(headers, rows)

    l1_total = l1_mean = 0.0
    rows = []
    for group, members in L1_GROUPS.items():
        present = [m for m in members if m in components]
        if not present:
            continue
        need = need_of(samples, present, phases)
        count = deployed[present[0]].count
        today_cost = sum(monthly(class_size(spec, m), deployed[m].count) for m in present)
        l1_total += monthly(need.size, count)
        l1_mean += monthly(need.size_on_mean, count)
        rows.append(
            [
                group,
                str(count),
                f"{need.peak_pss:.0f}",
                f"{need.p95_vcpu:.3f}",
                f"{need.vcpu:.2f} vCPU/{need.memory_mib:.0f} MiB",
                describe(need.size),
                f"${monthly(need.size, count):.2f}",
                f"${today_cost:.2f}",
            ]
        )
    print("\nLayout L1 (containers of one task; sums of simultaneous samples; copies = count):")
    headers = ["task", "count", "peak PSS", "p95 vCPU", "rule asks", "measured size"]
    headers += ["monthly", "today (its services)"]
    print_table(headers, rows)

    print("\nMonthly Fargate ARM, always on, at the template's counts:")
    mean_rule = f"CPU on max({MIN_VCPU:g}, {CPU_HEADROOM:g} x mean) instead"
    print_table(
        ["layout", "monthly", "vs today", mean_rule, "vs today"],
        [
            [
                f"today ({spec.name} sizes, one service per component)",
                f"${today_total:.2f}",
                "-",
                "-",
                "-",
            ],
            [
                "L2: one service per component, measured sizes",
                f"${l2_total:.2f}",
                f"{l2_total / today_total:.2f}",
                f"${l2_mean:.2f}",
                f"{l2_mean / today_total:.2f}",
            ],
            [
                "L1: scheduler+dag-processor+triggerer, api-server+execution-api",
                f"${l1_total:.2f}",
                f"{l1_total / today_total:.2f}",
                f"${l1_mean:.2f}",
                f"{l1_mean / today_total:.2f}",
            ],
        ],
    )


# --- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(
    template: dict[str, Any], keep: bool
) -> Iterator[tuple[AirflowUnderTest, list[str], LocalPostgres]]:
    """The booted environment, with the load DAGs in its sync root."""
    venv = airflow_venv()
    work = Path(tempfile.mkdtemp(prefix="openmwaa-measure-"))
    fixture = work / "sync-fixture"
    shutil.copytree(SYNC_FIXTURE, fixture)
    dag_ids = write_load_dags(fixture / "dags")
    postgres = LocalPostgres(postgres_bin_dir())
    env: AirflowUnderTest | None = None
    try:
        postgres.start()
        env = boot(
            template,
            "app.py (synthesized)",
            venv,
            postgres,
            work_dir=work / "env",
            sync_fixture=fixture,
        )
        yield env, dag_ids, postgres
    finally:
        if env is not None:
            shut_down(env)
        postgres.stop()
        if keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def postmaster_pid(postgres: LocalPostgres) -> int:
    return int(Path(postgres.directory, "data", "postmaster.pid").read_text().split()[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=180.0, help="idle phase, seconds")
    parser.add_argument("--load", type=float, default=300.0, help="load phase limit, seconds")
    parser.add_argument("--settle", type=float, default=30.0, help="wait before idle, seconds")
    parser.add_argument("--interval", type=float, default=5.0, help="sampling interval, seconds")
    parser.add_argument("--ui-rate", type=float, default=2.0, help="UI request pairs a second")
    parser.add_argument("--keep", action="store_true", help="keep the components' logs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: the components run in mount namespaces, as in the e2e")

    began = time.monotonic()
    template = synthesized_template()
    metadata = environment_metadata(template)
    spec = spec_for(metadata["environmentClass"])
    deployed = deployed_components(template, int(metadata["minWorkers"]))
    print(
        f"template: app.py, {metadata['environmentClass']}, Airflow {metadata['airflowVersion']}"
        f"; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with environment(template, args.keep) as (env, dag_ids, postgres):
        components = list(env.components)
        booted = time.monotonic()
        wait_parsed(env, dag_ids)
        time.sleep(args.settle)
        roots = {name: env.processes[name].popen.pid for name in components}
        roots["postgres*"] = postmaster_pid(postgres)
        sampler = Sampler(roots, args.interval)
        sampler.start()
        print(
            f"booted in {booted - began:.0f} s, {len(dag_ids)} load DAGs parsed; idle "
            f"{args.idle:g} s",
            flush=True,
        )
        try:
            sampler.begin("idle")
            time.sleep(args.idle)
            sampler.end()
            print(f"load: {len(dag_ids)} runs, at most {args.load:g} s", flush=True)
            result = run_load(env, sampler, dag_ids, args.load, args.ui_rate)
        finally:
            sampler.finish()
        env.assert_running()
    phases = ("idle", "load")
    loads = {p: [s.load_average for s in phase_samples(sampler.samples, p)] for p in phases}
    print(
        f"\nload phase: {result.seconds:.0f} s, "
        + ("every run finished" if result.finished else "stopped at the limit")
        + f"; runs {result.states}; task instances {result.tasks}; "
        f"triggerer's peak of triggers running (its once-a-minute log line) "
        f"{result.peak_triggers}; "
        f"UI requests {result.ui_ok} ok, {result.ui_failed} failed"
    )
    print(
        "1-minute load average (2 cores): "
        + ", ".join(f"{p} {min(v):.2f}-{max(v):.2f}" for p, v in loads.items() if v)
    )
    print()
    report_components(sampler.samples, [*components, "postgres*"], phases)
    print(
        "* the local PostgreSQL (the metadata database, every connection of every component): "
        "context for Aurora, not sized"
    )
    report_sizing(sampler.samples, components, deployed, spec, phases)
    print(f"\ntotal {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
