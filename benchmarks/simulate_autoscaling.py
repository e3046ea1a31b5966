"""Simulation of worker autoscaling policies on replayed workload traces.

    python benchmarks/simulate_autoscaling.py [--seed N] [--seeds N] [--jobs N]
                                              [--bootstrap-seconds LO,HI]
                                              [--spot-interruptions-per-hour R]

Every policy runs on the same model of an ECS Fargate service of Celery workers (mw1.small:
size and tasks per worker from constructs/openmwaa/environment_class.py), with the same
worker-side scale-in protection (the real rules of constructs/openmwaa/runtime/protection_policy.py:
protection on task receipt, the monitor's warm-up, renewals and release after two idle checks):

* ``ours``: the real Lambda loop, ``autoscaler.loop.run_invocation``, on a virtual clock,
  with ``core.MemoryStore`` for the lease and the demand history, fed by a fake of the AWS side
  (:class:`SimIO`): SQS approximate counts (lagged and noisy), DescribeServices,
  UpdateService (acted on after a lag), one EventBridge run a minute with delivery jitter,
  occasional throttled calls and lost runs. ``ours, min 0`` is the same with ``min_workers=0``.
* ``mwaa 2 min`` / ``mwaa 5 min``: Amazon MWAA's documented worker autoscaling today:
  required = ceil((RunningTasks + QueuedTasks) / tasks per worker) from one-minute metrics
  read a minute late; scale out at once; scale in as the sum falls, to what the last 2 or 5
  one-minute datapoints needed; busy workers are protected and not stopped.
* ``ecs target tracking``: Application Auto Scaling target tracking on backlog per worker =
  (queued + in flight) / running workers, target = tasks per worker, one-minute datapoints a
  minute late, scale out after 3 of 3 datapoints above the target, scale in after 15 of 15
  below 90 % of it, scale-in cooldown 300 s; no scaling on missing data.

The sources and the estimates behind every figure are listed in docs/autoscaling.md
("Simulation"); the constants below say where each comes from.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas")]

from autoscaler import core, loop  # noqa: E402
from autoscaler.settings import Settings  # noqa: E402


def _load(name: str, path: Path) -> ModuleType:
    """Import one stdlib-only module of the construct package by path (importing the package
    itself would start aws-cdk-lib's jsii runtime)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tp = _load("_sim_protection_policy", ROOT / "constructs/openmwaa/runtime/protection_policy.py")
environment_class = _load(
    "_sim_environment_class", ROOT / "constructs/openmwaa/environment_class.py"
)

logging.getLogger("openmwaa.autoscaler").setLevel(logging.CRITICAL)

# --- the environment ---------------------------------------------------------------------

SPEC = environment_class.spec_for("mw1.small")
TASKS_PER_WORKER: int = SPEC.tasks_per_worker
WORKER_VCPU: float = SPEC.worker.cpu / 1024
WORKER_GB: float = SPEC.worker.memory_mib / 1024
MIN_WORKERS = 1
MAX_WORKERS = 20

PRICES: dict[str, tuple[float, float]] = {
    # us-east-1, Linux, per vCPU-hour and per GB-hour (aws.amazon.com/fargate/pricing).
    "x86": (0.04048, 0.004445),
    "arm64": (0.03238, 0.00356),
    # Fargate Spot (x86) moves with supply and demand; the last published us-east-1 figure.
    "spot": (0.01334053, 0.00146489),
}
BILLING_MINIMUM_SECONDS = 60.0
"""Fargate bills per second from the image pull to the task's end, one minute minimum."""

# --- ECS and Fargate ---------------------------------------------------------------------

PROVISIONING_SECONDS = (30.0, 60.0)
"""Estimate: placement, network interface, start; not billed. docs/runtime.md estimates 20-40 s;
this model keeps a slower range, with which the results in docs/autoscaling.md were produced."""
IMAGE_PULL_SECONDS = (40.0, 90.0)
"""Estimate: the stock apache/airflow image from ECR in-region; billed. docs/runtime.md estimates
30-90 s; this model keeps 40-90 s, with which the results in docs/autoscaling.md were produced."""
BOOTSTRAP_SECONDS = (15.0, 30.0)
"""Container start to "Celery ready" with prebuilt requirements. benchmarks/bench_worker_start.py
measures the runtime's part (0.2-0.3 s to exec Airflow) and the import of Airflow's Celery
executor with the requirements (2.7-4.0 s; docs/runtime.md); Celery's own start until it is
ready on SQS is not measured there, so this range is an estimate around those figures."""
UPDATE_SERVICE_LAG_SECONDS = (1.0, 5.0)
"""Estimate: from UpdateService (or Application Auto Scaling's change) to the service
scheduler acting on the new desiredCount. ECS documents no figure."""
ECS_SCALE_IN_PERIOD = 5
STOP_TIMEOUT = 120.0
"""A stopped worker gets SIGTERM (Celery warm shutdown) and SIGKILL this much later."""
PROC_TITLE_LAG = 4.0
"""A task shows in /proc this long after Celery receives it (3.8-10.4 s measured on 3.3.2)."""
PROTECTION_LATENCY = 0.2
"""Seconds from a protection call to ECS knowing it (pessimistic)."""

# --- the autoscaler's AWS side (ours) ------------------------------------------------------

SQS_LAG_SECONDS = (0.0, 5.0)
"""Assumption: SQS's approximate counts reflect the queue as it was up to this long ago
(SQS documents them as approximate and eventually consistent, with no figure)."""
SQS_NOISE = 0.02
"""Assumption: on top of the lag, each count is off by a normal error of 2 % of its value."""
EVENTBRIDGE_DELAY_MEAN = 2.0
EVENTBRIDGE_DELAY_MAX = 20.0
"""A run starts at the rule's second of the minute plus an exponential delivery delay
(EventBridge: "within that minute ... a delay of several seconds")."""
COLD_START_PROBABILITY = 0.05
COLD_START_SECONDS = 1.0
LOST_RUN_PROBABILITY = 0.002
"""A run that never happens (throttled, failed, not delivered; no retry is configured)."""
CALL_LATENCY_SECONDS = (0.02, 0.12)
CALL_FAILURE_PROBABILITY = 0.001
"""Each AWS call fails (throttling, a 5xx) with this probability."""

# --- the baselines ---------------------------------------------------------------------------

MWAA_METRIC_DELAY = 60.0
"""MWAA reads one-minute datapoints of QueuedTasks and RunningTasks one minute late."""
TT_HIGH_DATAPOINTS = 3
TT_LOW_DATAPOINTS = 15
TT_LOW_FRACTION = 0.9
TT_SCALE_IN_COOLDOWN = 300.0
TT_METRIC_DELAY = 60.0


@dataclass
class Task:
    id: int
    arrival: float
    duration: float
    start: float | None = None
    end: float | None = None
    killed: bool = False


@dataclass
class Worker:
    id: int
    launched: float
    pull_start: float
    container_start: float
    ready: float
    interrupt_at: float = math.inf
    running: list[Task] = field(default_factory=list)
    stop_at: float | None = None
    """SIGTERM: consumption stops; killed STOP_TIMEOUT later."""
    gone_at: float | None = None
    monitor: tp.MonitorState | None = None
    next_check: float = math.inf
    protection: tuple[float, float] | None = None
    """(from, until): the scale-in protection as ECS knows it."""
    last_receipt: float = -math.inf
    receipt_quiet_until: float = -math.inf

    def active(self) -> bool:
        return self.gone_at is None and self.stop_at is None

    def protected(self, t: float) -> bool:
        return self.protection is not None and self.protection[0] <= t < self.protection[1]

    def protect(self, start: float, until: float) -> None:
        if self.protection is not None and self.protection[0] <= start < self.protection[1]:
            start = self.protection[0]
        self.protection = (start, until)


@dataclass(frozen=True)
class Timing:
    bootstrap: tuple[float, float] = BOOTSTRAP_SECONDS
    spot_interruptions_per_hour: float = 0.0
    cooldown_seconds: float = 300.0
    """Ours: SCALE_IN_COOLDOWN_SECONDS (the construct's default)."""
    receipt_protection: bool = True
    """Protection on task receipt (ReceiptProtector); False: the monitor alone."""


class Cluster:
    """The worker ECS service, its workers and the SQS broker queue, in one-second steps."""

    def __init__(self, tasks: list[Task], seed: int, min_workers: int, timing: Timing) -> None:
        self.pending = deque(sorted(tasks, key=lambda task: task.arrival))
        self.tasks = tasks
        self.queue: deque[Task] = deque()
        self.workers: list[Worker] = []
        self.desired = min_workers
        """desiredCount as DescribeServices returns it (set by UpdateService at once)."""
        self.acting = min_workers
        """desiredCount as the service scheduler acts on it (after the UpdateService lag)."""
        self.changes: list[tuple[float, int]] = []
        self.rng = random.Random(seed)
        self.receipt_rng = random.Random(seed + 1000)
        self.lag_rng = random.Random(seed + 2000)
        self.timing = timing
        self.rules = tp.ProtectionRules()
        self.peak_workers = 0
        self.now = -1.0
        self.next_step = 0
        self.queued_at: list[int] = []
        """Per second: messages visible in the queue (true)."""
        self.inflight_at: list[int] = []
        """Per second: messages held by workers (true)."""
        self.hooks: list[Callable[[float], None]] = []
        # The service starts at min_workers, already warm.
        for _ in range(min_workers):
            self.workers.append(Worker(len(self.workers), -600, -600, -600, -600))

    # -- time -----------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Run every one-second step up to ``t``; the clock never goes back."""
        while self.next_step <= t:
            self.now = float(self.next_step)
            self._step(self.now)
            self.next_step += 1
        self.now = max(self.now, t)

    # -- the service ----------------------------------------------------------------------
    def set_desired(self, t: float, count: int) -> None:
        """UpdateService: visible at once, acted on after a lag."""
        self.desired = count
        lag = self.lag_rng.uniform(*UPDATE_SERVICE_LAG_SECONDS)
        self.changes.append((t + lag, count))

    def running_count(self, t: float) -> int:
        """ECS runningCount: tasks whose containers started (not yet stopped)."""
        return sum(1 for w in self.workers if w.gone_at is None and w.container_start <= t)

    def queue_counts(self, t: float) -> tuple[int, int]:
        """True (visible, in flight) at second ``t`` (clamped to the recorded history)."""
        if not self.queued_at:
            return 0, 0
        i = min(len(self.queued_at) - 1, max(0, int(t)))
        return self.queued_at[i], self.inflight_at[i]

    # -- one step ---------------------------------------------------------------------------
    def _step(self, t: float) -> None:
        while self.pending and self.pending[0].arrival <= t:
            self.queue.append(self.pending.popleft())
        for w in self.workers:
            if w.gone_at is not None:
                continue
            if w.running:
                for task in [x for x in w.running if x.start + x.duration <= t]:  # type: ignore[operator]
                    task.end = task.start + task.duration  # type: ignore[operator]
                    w.running.remove(task)
            if w.stop_at is None and w.interrupt_at <= t:
                w.stop_at = t  # Fargate Spot interruption: protection does not help
            if w.stop_at is not None and (not w.running or t >= w.stop_at + STOP_TIMEOUT):
                for task in w.running:
                    task.killed = True
                    task.end = t
                w.running = []
                w.gone_at = t
        self._dispatch(t)
        self._monitors(t)
        self.queued_at.append(len(self.queue))
        self.inflight_at.append(sum(len(w.running) for w in self.workers if w.gone_at is None))
        for hook in self.hooks:
            hook(t)
        while self.changes and self.changes[0][0] <= t:
            self.acting = self.changes.pop(0)[1]
        self._reconcile(t)

    def _dispatch(self, t: float) -> None:
        if not self.queue:
            return
        free = [
            w
            for w in self.workers
            if w.active() and w.ready <= t and len(w.running) < TASKS_PER_WORKER
        ]
        while self.queue and free:
            w = self.rng.choice(free)
            task = self.queue.popleft()
            task.start = t
            w.running.append(task)
            self._on_receipt(w, t)
            if len(w.running) >= TASKS_PER_WORKER:
                free.remove(w)

    def _on_receipt(self, w: Worker, t: float) -> None:
        """task_protection.ReceiptProtector: marker, then a protection call (debounced)."""
        if not self.timing.receipt_protection:
            return
        w.last_receipt = t
        if t < w.receipt_quiet_until:
            return
        received = t - self.receipt_rng.random()  # somewhere in this one-second step
        w.protect(received + PROTECTION_LATENCY, t + self.rules.expires_in_minutes * 60.0)
        w.receipt_quiet_until = t + self.rules.receipt_grace_seconds / 2

    def _monitors(self, t: float) -> None:
        """task_protection.run_monitor, with its real decide/apply/next_delay."""
        for w in self.workers:
            if not w.active() or w.container_start > t:
                continue
            if w.monitor is None:
                w.monitor = tp.MonitorState(started_at=max(t, w.container_start))
                w.next_check = t
            if w.next_check > t:
                continue
            busy = any(task.start + PROC_TITLE_LAG <= t for task in w.running)  # type: ignore[operator]
            busy = busy or tp.received_recently(t - w.last_receipt, self.rules)
            action = tp.decide(w.monitor, busy, t, self.rules)
            if action is tp.Action.PROTECT:
                w.protect(t + PROTECTION_LATENCY, t + self.rules.expires_in_minutes * 60.0)
            elif action is tp.Action.RELEASE:
                w.protection = None
            w.monitor = tp.apply(w.monitor, busy, t, action, True, self.rules)
            w.next_check = t + tp.next_delay(w.monitor, t, self.rules)

    def _launch(self, t: float) -> Worker:
        pull_start = t + self.rng.uniform(*PROVISIONING_SECONDS)
        container_start = pull_start + self.rng.uniform(*IMAGE_PULL_SECONDS)
        ready = container_start + self.rng.uniform(*self.timing.bootstrap)
        w = Worker(len(self.workers), t, pull_start, container_start, ready)
        if self.timing.spot_interruptions_per_hour > 0:
            w.interrupt_at = pull_start + self.rng.expovariate(
                self.timing.spot_interruptions_per_hour / 3600.0
            )
        return w

    def _reconcile(self, t: float) -> None:
        """The service scheduler: launch up to desiredCount; stop the excess it may stop."""
        active = [w for w in self.workers if w.active()]
        if len(active) < self.acting:
            for _ in range(self.acting - len(active)):
                self.workers.append(self._launch(t))
        elif len(active) > self.acting and int(t) % ECS_SCALE_IN_PERIOD == 0:
            candidates = [w for w in active if not w.protected(t)]
            self.rng.shuffle(candidates)
            candidates.sort(key=lambda w: w.container_start <= t)  # not yet started first
            for w in candidates[: len(active) - self.acting]:
                if w.container_start > t:
                    w.gone_at = t
                else:
                    w.stop_at = t
        alive = sum(1 for w in self.workers if w.gone_at is None)
        self.peak_workers = max(self.peak_workers, alive)

    def billed_seconds(self, end: float) -> float:
        """Fargate billing: from the image pull to the task's end, one minute minimum (the
        workers already running at 0 are billed from 0)."""
        total = 0.0
        for w in self.workers:
            stop = min(end, w.gone_at if w.gone_at is not None else end)
            if w.pull_start < 0:
                total += stop
            elif stop > w.pull_start:
                total += max(stop - w.pull_start, BILLING_MINIMUM_SECONDS)
        return total


# --- ours: the real Lambda loop ----------------------------------------------------------------


class SimIO:
    """The AWS side of one environment, on the cluster's virtual clock (loop.InvocationIO)."""

    def __init__(self, cluster: Cluster, store: core.MemoryStore, rng: random.Random) -> None:
        self.cluster = cluster
        self.store = store
        self.rng = rng

    def _call(self, operation: str) -> None:
        self.cluster.advance_to(self.cluster.now + self.rng.uniform(*CALL_LATENCY_SECONDS))
        if self.rng.random() < CALL_FAILURE_PROBABILITY:
            raise loop.AwsCallError(operation, "ThrottlingException: Rate exceeded", "Throttling")

    def _approximate(self, value: int) -> int:
        return max(0, round(value + self.rng.gauss(0.0, SQS_NOISE * value)))

    def read_queue(self) -> tuple[int, int]:
        self._call("sqs:GetQueueAttributes")
        lag = self.rng.uniform(*SQS_LAG_SECONDS)
        queued, inflight = self.cluster.queue_counts(self.cluster.now - lag)
        return self._approximate(queued), self._approximate(inflight)

    def read_service(self) -> tuple[int, int]:
        self._call("ecs:DescribeServices")
        return self.cluster.desired, self.cluster.running_count(self.cluster.now)

    def set_desired_count(self, count: int) -> None:
        self._call("ecs:UpdateService")
        self.cluster.set_desired(self.cluster.now, count)

    def read_services(self) -> list[core.ServiceCount]:
        return []  # the simulation watches the workers' demand only

    def publish(
        self, samples: Sequence[loop.Sample], services: core.ServiceSnapshot | None = None
    ) -> int:
        self._call("cloudwatch:PutMetricData")
        return 1

    def acquire_lease(self, owner: str, now: float, until: float) -> bool:
        self._call("dynamodb:PutItem")
        return self.store.acquire_lease(owner, now, until)

    def release_lease(self, owner: str) -> None:
        self._call("dynamodb:DeleteItem")
        self.store.release_lease(owner)

    def record_sample(self, at: float, demand: int) -> None:
        self._call("dynamodb:PutItem")
        self.store.record_sample(at, demand)

    def read_history(self, start: float, end: float) -> list[core.LoadPoint]:
        self._call("dynamodb:Query")
        return self.store.read_history(start, end)


class Ours:
    """EventBridge once a minute -> loop.run_invocation, on the cluster's clock."""

    def __init__(self, cluster: Cluster, seed: int, min_workers: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed + 3000)
        self.settings = Settings.from_env(
            {
                "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/celery",
                "CLUSTER_NAME": "sim",
                "SERVICE_NAME": "workers",
                "MIN_WORKERS": str(min_workers),
                "MAX_WORKERS": str(MAX_WORKERS),
                "TASKS_PER_WORKER": str(TASKS_PER_WORKER),
                "ENVIRONMENT_NAME": "sim",
                "TABLE_NAME": "sim",
                "SCALE_IN_COOLDOWN_SECONDS": str(cluster.timing.cooldown_seconds),
            }
        )
        self.io = SimIO(cluster, core.MemoryStore(), self.rng)
        self.offset = self.rng.uniform(0.0, 60.0)
        """The second of the minute at which the rule fires."""
        self.minute = 0
        self.next_run = self._schedule()
        self.runs = 0
        self.busy_runs = 0
        self.lost_runs = 0

    def _schedule(self) -> float:
        """The start of the next run: its minute, the rule's offset, a delivery delay."""
        while True:
            fire = self.minute * 60.0 + self.offset
            self.minute += 1
            if self.rng.random() < LOST_RUN_PROBABILITY:
                self.lost_runs += 1
                continue
            delay = min(EVENTBRIDGE_DELAY_MAX, self.rng.expovariate(1.0 / EVENTBRIDGE_DELAY_MEAN))
            if self.rng.random() < COLD_START_PROBABILITY:
                delay += COLD_START_SECONDS
            return fire + delay

    def _sleep(self, seconds: float) -> None:
        target = self.cluster.now + max(0.0, seconds)
        while self.next_run <= target:  # a run that starts while this one sleeps
            self.cluster.advance_to(self.next_run)
            self._invoke()
        self.cluster.advance_to(target)

    def _invoke(self) -> None:
        self.next_run = self._schedule()
        self.runs += 1
        summary = loop.run_invocation(
            self.settings,
            self.io,  # type: ignore[arg-type]
            clock=lambda: self.cluster.now,
            sleep=self._sleep,
            lease_seconds=60.0 + loop.LEASE_MARGIN_SECONDS,  # Lambda timeout 60 s
            owner=f"run-{self.runs}",
        )
        if summary.lease == "busy":
            self.busy_runs += 1

    def run(self, end: float) -> None:
        while self.next_run < end:
            self.cluster.advance_to(self.next_run)
            self._invoke()
        self.cluster.advance_to(end)


# --- the baselines -----------------------------------------------------------------------------


class MinuteMetrics:
    """One-minute datapoints, each readable ``delay`` seconds after its minute ends."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.points: list[float | None] = []
        self.current: list[float] = []

    def add(self, t: float, value: float | None) -> None:
        minute = int(t // 60)
        while len(self.points) < minute:
            self.points.append(max(self.current) if self.current else None)
            self.current = []
        if value is not None:
            self.current.append(value)

    def readable(self, t: float) -> list[float | None]:
        """The datapoints whose minute ended at least ``delay`` seconds before ``t``."""
        last = int((t - self.delay) // 60)  # minutes [0, last) are readable
        return self.points[: max(0, min(last, len(self.points)))]


class Mwaa:
    """MWAA today: (running + queued) / tasks per worker, protected scale-in.

    The datapoint of a minute is the highest queued + running seen in it (Airflow's executor
    counts, exact; the maximum is the statistic most favourable to MWAA's scale-out).
    Evaluated once a minute; scale out at once to the newest readable datapoint; scale in to
    what the highest of the last ``window`` datapoints needs, only when all are readable.
    """

    def __init__(self, cluster: Cluster, window_minutes: int) -> None:
        self.cluster = cluster
        self.window = window_minutes
        self.metrics = MinuteMetrics(MWAA_METRIC_DELAY)
        cluster.hooks.append(self.tick)

    def tick(self, t: float) -> None:
        queued, inflight = self.cluster.queue_counts(t)
        self.metrics.add(t, queued + inflight)
        if int(t) % 60:
            return
        points = self.metrics.readable(t)
        if not points or points[-1] is None:
            return
        desired = self.cluster.desired
        required = _clamp(math.ceil(points[-1] / TASKS_PER_WORKER), MIN_WORKERS)
        if required > desired:
            self.cluster.set_desired(t, required)
            return
        recent = points[-self.window :]
        if len(recent) < self.window or any(p is None for p in recent):
            return
        floor = _clamp(math.ceil(max(p for p in recent if p is not None) / TASKS_PER_WORKER))
        if floor < desired:
            self.cluster.set_desired(t, floor)


class TargetTracking:
    """Application Auto Scaling target tracking on backlog per worker, protected scale-in.

    Metric (metric math on one-minute datapoints): (ApproximateNumberOfMessagesVisible +
    ApproximateNumberOfMessagesNotVisible) / RunningTaskCount, SQS's value sampled once in the
    minute with the same lag and noise as ours gets; no datapoint while no task runs (the
    policy then does not scale). The new capacity is running x metric / target with the
    running count of the datapoint's own minute, so a stale datapoint never over-counts the
    workers started since (the most favourable reading of the scale-out cooldown rules).
    """

    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed + 4000)
        self.metrics = MinuteMetrics(TT_METRIC_DELAY)
        self.running = MinuteMetrics(TT_METRIC_DELAY)
        self.sample_second = self.rng.randrange(60)
        self.last_scale_in = -math.inf
        self.target = float(TASKS_PER_WORKER)
        cluster.hooks.append(self.tick)

    def tick(self, t: float) -> None:
        if int(t) % 60 == self.sample_second:
            lag = self.rng.uniform(*SQS_LAG_SECONDS)
            queued, inflight = self.cluster.queue_counts(t - lag)
            noisy = sum(
                max(0, round(v + self.rng.gauss(0.0, SQS_NOISE * v))) for v in (queued, inflight)
            )
            running = self.cluster.running_count(t)
            self.metrics.add(t, noisy / running if running else None)
            self.running.add(t, running)
        if int(t) % 60:
            return
        points = self.metrics.readable(t)
        if not points:
            return
        running = self.running.readable(t)[-1] or 0.0
        desired = self.cluster.desired
        high = points[-TT_HIGH_DATAPOINTS:]
        if len(high) == TT_HIGH_DATAPOINTS and all(p is not None and p > self.target for p in high):
            want = _clamp(math.ceil(running * high[-1] / self.target))  # type: ignore[operator]
            if want > desired:
                self.cluster.set_desired(t, want)
                return
        low = points[-TT_LOW_DATAPOINTS:]
        if (
            len(low) == TT_LOW_DATAPOINTS
            and all(p is not None and p < TT_LOW_FRACTION * self.target for p in low)
            and t - self.last_scale_in >= TT_SCALE_IN_COOLDOWN
        ):
            want = _clamp(math.ceil(running * low[-1] / self.target))  # type: ignore[operator]
            if want < desired:
                self.cluster.set_desired(t, want)
                self.last_scale_in = t


def _clamp(n: int, low: int = MIN_WORKERS) -> int:
    return min(MAX_WORKERS, max(low, n))


# --- traces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    name: str
    horizon: float
    build: Callable[[random.Random], list[tuple[float, float]]]
    """(arrival, duration) per task."""


def _poisson(
    rng: random.Random, start: float, end: float, per_minute: float, dur: tuple[float, float]
) -> list[tuple[float, float]]:
    out, t = [], start
    while True:
        t += rng.expovariate(per_minute / 60.0)
        if t >= end:
            return out
        out.append((t, rng.uniform(*dur)))


def nightly_batch(rng: random.Random) -> list[tuple[float, float]]:
    # A fan-out of 150 tasks at 00:30, a second wave of 80 at 01:15 (3-20 min each).
    tasks = [(1800 + rng.uniform(0, 120), rng.uniform(180, 1200)) for _ in range(150)]
    tasks += [(4500 + rng.uniform(0, 60), rng.uniform(180, 900)) for _ in range(80)]
    return tasks


def steady_trickle(rng: random.Random) -> list[tuple[float, float]]:
    return _poisson(rng, 0, 4 * 3600, 1.5, (60, 360))


def sudden_spike(rng: random.Random) -> list[tuple[float, float]]:
    tasks = _poisson(rng, 0, 3 * 3600, 0.5, (60, 300))
    tasks += [(3600 + rng.uniform(0, 30), rng.uniform(60, 180)) for _ in range(120)]
    return tasks


def long_tasks_across_scale_in(rng: random.Random) -> list[tuple[float, float]]:
    # 8 tasks of 60-90 min start with 60 short ones; then a small task every ~10 min.
    tasks = [(600 + rng.uniform(0, 60), rng.uniform(3600, 5400)) for _ in range(8)]
    tasks += [(600 + rng.uniform(0, 60), rng.uniform(180, 360)) for _ in range(60)]
    tasks += _poisson(rng, 900, 3 * 3600, 0.1, (30, 240))
    return tasks


def short_burst(rng: random.Random) -> list[tuple[float, float]]:
    """A small trace for tests: a burst of 40 tasks at 5 min, then quiet."""
    return [(300 + rng.uniform(0, 30), rng.uniform(60, 240)) for _ in range(40)]


TRACES = [
    Trace("nightly batch burst", 4 * 3600, nightly_batch),
    Trace("steady trickle", 4.5 * 3600, steady_trickle),
    Trace("sudden spike", 3.5 * 3600, sudden_spike),
    Trace("long tasks across a scale-in", 3.5 * 3600, long_tasks_across_scale_in),
]
EXTRA_TRACES = {"short burst": Trace("short burst", 1800, short_burst)}
POLICIES = ["ours", "mwaa 2 min", "mwaa 5 min", "ecs target tracking", "ours, min 0"]
PROTECTED = set(POLICIES)
"""Every policy runs with the worker-side protection rules."""


# --- running and reporting -----------------------------------------------------------------


@dataclass
class Result:
    policy: str
    trace: str
    seed: int
    tasks: int
    mean_wait: float
    p95_wait: float
    worker_hours: float
    killed: int
    finished: int
    unfinished: int
    peak_workers: int
    ours_runs: int = 0
    ours_busy_runs: int = 0

    def dollars(self, price: str) -> float:
        cpu, gb = PRICES[price]
        return self.worker_hours * (WORKER_VCPU * cpu + WORKER_GB * gb)


def _trace(name: str) -> Trace:
    for trace in TRACES:
        if trace.name == name:
            return trace
    return EXTRA_TRACES[name]


def simulate(trace_name: str, policy: str, seed: int, timing: Timing | None = None) -> Result:
    """One run: the trace (drawn from ``seed``) under one policy."""
    trace = _trace(trace_name)
    timing = timing or Timing()
    tasks = [Task(i, a, d) for i, (a, d) in enumerate(trace.build(random.Random(seed)))]
    min_workers = 0 if policy == "ours, min 0" else MIN_WORKERS
    cluster = Cluster(tasks, seed + 1, min_workers, timing)
    end = trace.horizon
    ours: Ours | None = None
    if policy.startswith("ours"):
        ours = Ours(cluster, seed, min_workers)
        ours.run(end)
    else:
        if policy.startswith("mwaa"):
            Mwaa(cluster, int(policy.split()[1]))
        elif policy == "ecs target tracking":
            TargetTracking(cluster, seed)
        else:
            raise ValueError(f"unknown policy {policy!r}")
        cluster.advance_to(end)
    waits = sorted(
        ((task.start if task.start is not None else end) - task.arrival) for task in tasks
    )
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)] if waits else 0.0
    return Result(
        policy=policy,
        trace=trace.name,
        seed=seed,
        tasks=len(tasks),
        mean_wait=statistics.fmean(waits) if waits else 0.0,
        p95_wait=p95,
        worker_hours=cluster.billed_seconds(end) / 3600.0,
        killed=sum(task.killed for task in tasks),
        finished=sum(1 for task in tasks if task.end is not None and not task.killed),
        unfinished=sum(1 for task in tasks if task.end is None),
        peak_workers=cluster.peak_workers,
        ours_runs=ours.runs if ours else 0,
        ours_busy_runs=ours.busy_runs if ours else 0,
    )


def _run(job: tuple[str, str, int, Timing]) -> Result:
    return simulate(*job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the per-trace tables")
    parser.add_argument("--seeds", type=int, default=20, help="also summarise seeds 1..N (0: skip)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--bootstrap-seconds",
        default=",".join(f"{s:g}" for s in BOOTSTRAP_SECONDS),
        help="LO,HI: container start to Celery ready (an estimate; see BOOTSTRAP_SECONDS)",
    )
    parser.add_argument(
        "--spot-interruptions-per-hour",
        type=float,
        default=0.0,
        help="Fargate Spot interruptions per worker-hour (default 0: none)",
    )
    parser.add_argument(
        "--cooldown", type=float, default=300.0, help="ours: SCALE_IN_COOLDOWN_SECONDS"
    )
    parser.add_argument(
        "--no-receipt-protection",
        action="store_true",
        help="every policy without protection on task receipt (the monitor alone)",
    )
    args = parser.parse_args(argv)
    lo, hi = (float(x) for x in args.bootstrap_seconds.split(","))
    timing = Timing(
        bootstrap=(lo, hi),
        spot_interruptions_per_hour=args.spot_interruptions_per_hour,
        cooldown_seconds=args.cooldown,
        receipt_protection=not args.no_receipt_protection,
    )
    started = time.monotonic()
    jobs = [(trace.name, policy, args.seed, timing) for trace in TRACES for policy in POLICIES]
    summary_jobs = [
        (trace.name, policy, seed, timing)
        for trace in TRACES
        for policy in POLICIES[:4]
        for seed in range(1, args.seeds + 1)
    ]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(_run, jobs + summary_jobs, chunksize=4))
    per_trace, summary = results[: len(jobs)], results[len(jobs) :]

    print(
        f"mw1.small workers ({WORKER_VCPU:g} vCPU, {WORKER_GB:g} GB, {TASKS_PER_WORKER} tasks "
        f"each), min {MIN_WORKERS} max {MAX_WORKERS}; worker start = provisioning "
        f"{_range(PROVISIONING_SECONDS)} + image pull {_range(IMAGE_PULL_SECONDS)} + bootstrap "
        f"{_range(timing.bootstrap)} s; Spot interruptions "
        f"{args.spot_interruptions_per_hour:g}/worker-hour; protection on task receipt "
        f"{'off' if args.no_receipt_protection else 'on'}; ours: cool-down {args.cooldown:g} s; "
        f"seed {args.seed}\n"
    )
    print(
        "$ per run at us-east-1 Fargate prices per worker-hour: "
        + ", ".join(f"{p} {_hourly(p):.5f}" for p in PRICES)
        + "\n"
    )
    for trace in TRACES:
        rows = [r for r in per_trace if r.trace == trace.name]
        print(f"### {trace.name} ({rows[0].tasks} tasks, {trace.horizon / 3600:g} h)\n")
        print(
            "| policy | mean wait (s) | p95 wait (s) | worker-hours | killed "
            "| $ x86 | $ arm64 | $ Spot | peak workers | not finished |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r.policy} | {r.mean_wait:.1f} | {r.p95_wait:.1f} | {r.worker_hours:.2f} "
                f"| {r.killed} | {r.dollars('x86'):.2f} | {r.dollars('arm64'):.2f} "
                f"| {r.dollars('spot'):.2f} | {r.peak_workers} | {r.unfinished} |"
            )
        print()
    if args.seeds:
        _summary(summary, args.seeds)
    print(f"({len(results)} runs in {time.monotonic() - started:.0f} s, {args.jobs} processes)")
    return 0


def _summary(results: list[Result], seeds: int) -> None:
    print(
        f"### all traces, seeds 1..{seeds}: means per run (killed: total); "
        "ours ahead = runs where ours had fewer worker-hours / a lower p95 wait\n"
    )
    print(
        "| trace | policy | mean wait (s) | p95 wait (s) | worker-hours | $ x86 | killed "
        "| ours ahead: hours | ours ahead: p95 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for trace in TRACES:
        ours = {r.seed: r for r in results if r.trace == trace.name and r.policy == "ours"}
        for policy in POLICIES[:4]:
            rows = [r for r in results if r.trace == trace.name and r.policy == policy]
            if policy == "ours":
                hours = p95 = "-"
            else:
                hours = f"{sum(ours[r.seed].worker_hours < r.worker_hours for r in rows)}/{seeds}"
                p95 = f"{sum(ours[r.seed].p95_wait < r.p95_wait for r in rows)}/{seeds}"
            print(
                f"| {trace.name} | {policy} "
                f"| {statistics.fmean(r.mean_wait for r in rows):.1f} "
                f"| {statistics.fmean(r.p95_wait for r in rows):.1f} "
                f"| {statistics.fmean(r.worker_hours for r in rows):.2f} "
                f"| {statistics.fmean(r.dollars('x86') for r in rows):.2f} "
                f"| {sum(r.killed for r in rows)} | {hours} | {p95} |"
            )
    print()


def _range(pair: tuple[float, float]) -> str:
    return f"{pair[0]:g}-{pair[1]:g}"


def _hourly(price: str) -> float:
    cpu, gb = PRICES[price]
    return WORKER_VCPU * cpu + WORKER_GB * gb


if __name__ == "__main__":
    raise SystemExit(main())
