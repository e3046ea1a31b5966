"""Discrete-time simulation of worker autoscaling policies on replayed workload traces.

    python benchmarks/simulate_autoscaling.py [--seed N] [--seeds N] [--cooldown SECONDS]
                                              [--no-receipt-protection]

Three policies run on the same traces, on the same model of an ECS service of Celery workers:

* ``ours``: the real decision core (lambdas/autoscaler/core.py) sampled as the Lambda does
  (an invocation a minute, a sample every 5 s for 50 s, cool-down history read back from
  per-minute CloudWatch maxima), plus the real worker-side protection rules
  (constructs/openmwaa/runtime/task_protection.py): ECS only stops unprotected workers. A
  worker turns protection on when Celery receives a task (``task_received``, before it runs),
  at a uniformly random instant of its one-second step; the monitor counts a task received in
  the last ``receipt_grace_seconds`` as running. ``--no-receipt-protection`` models the
  monitor alone (protection only once the task shows in /proc).
* ``mwaa-like``: MWAA's documented classic behaviour: required = ceil((queued + running) /
  tasks_per_worker) from one-minute Airflow metrics one minute late; back to min_workers once
  the metrics show zero tasks for two minutes; the workers to remove are picked regardless of
  what they run and keep consuming until Fargate removes them a minute later.
* ``cpu-target``: ECS service target tracking on CPUUtilization at 70 % (alarms on one-minute
  datapoints, one minute late: scale out after 3 high points, in after 15 low ones; cooldowns
  60 s out / 300 s in); it never sees the queue.

Model: a worker is billed from launch; it runs tasks after a 60-90 s start (Fargate + image +
Airflow boot). Celery hands a queued task to a random worker with a free slot. A stopped worker
gets SIGTERM (Celery warm shutdown: no new tasks, running ones continue) and is killed 120 s
later (stopTimeout); tasks still running then count as killed. A task shows in /proc 4 s after
Celery receives it (measured by tests/e2e/test_autoscaler_e2e.py on Airflow 3.3.2: 3.8 to
10.4 s until the supervisor forks the task runner). ECS evaluates scale-in every 5 s.
A protection call reaches ECS ``PROTECTION_LATENCY`` after it is made (a release at once),
so an ECS scale-in decision in the same instant can still pick the worker.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT / "constructs")]

from autoscaler import core  # noqa: E402
from openmwaa.runtime import task_protection as tp  # noqa: E402

STOP_TIMEOUT = 120.0
PROC_TITLE_LAG = 4.0
PROTECTION_LATENCY = 0.2
"""Seconds from a protection call to ECS knowing it (the agent's endpoint calls ECS's
UpdateTaskProtection; pessimistic)."""
CONTAINER_START = 15.0
ECS_SCALE_IN_PERIOD = 5
MIN_WORKERS = 1
MAX_WORKERS = 20
TASKS_PER_WORKER = 5  # mw1.small


@dataclass
class Task:
    id: int
    arrival: float
    duration: float
    cpu: float
    """Share of one worker slot's CPU the task keeps busy (I/O-bound tasks are low)."""
    start: float | None = None
    end: float | None = None
    killed: bool = False


@dataclass
class Worker:
    id: int
    launched: float
    ready: float
    running: list[Task] = field(default_factory=list)
    stop_at: float | None = None
    """SIGTERM: consumption stops; killed STOP_TIMEOUT later."""
    doomed_at: float | None = None
    """Picked for removal; SIGTERM at this time (MWAA-like removal delay)."""
    gone_at: float | None = None
    monitor: tp.MonitorState | None = None
    next_check: float = math.inf
    protection: tuple[float, float] | None = None
    """(from, until): the scale-in protection as ECS knows it."""
    last_receipt: float = -math.inf
    """The receipt marker: when Celery last received a task."""
    receipt_quiet_until: float = -math.inf

    def active(self) -> bool:
        return self.gone_at is None and self.stop_at is None and self.doomed_at is None

    def protected(self, t: float) -> bool:
        return self.protection is not None and self.protection[0] <= t < self.protection[1]

    def protect(self, start: float, until: float) -> None:
        if self.protection is not None and self.protection[0] <= start < self.protection[1]:
            start = self.protection[0]
        self.protection = (start, until)


class Cluster:
    """The worker ECS service plus the SQS queue, one-second steps."""

    def __init__(
        self,
        tasks: list[Task],
        seed: int,
        *,
        protection: bool,
        removal_delay: float,
        receipt_protection: bool = True,
    ):
        self.pending = deque(sorted(tasks, key=lambda task: task.arrival))
        self.tasks = tasks
        self.queue: deque[Task] = deque()
        self.workers: list[Worker] = []
        self.desired = MIN_WORKERS
        self.rng = random.Random(seed)
        self.receipt_rng = random.Random(seed + 1000)
        self.protection = protection
        self.receipt_protection = protection and receipt_protection
        self.removal_delay = removal_delay
        self.rules = tp.ProtectionRules()
        self.peak_workers = 0

    # -- observations -------------------------------------------------------------------
    def running_tasks(self) -> int:
        return sum(len(w.running) for w in self.workers if w.gone_at is None)

    def running_workers(self, t: float) -> int:
        return sum(1 for w in self.workers if w.gone_at is None and w.ready <= t)

    def service_cpu(self, t: float) -> float | None:
        ready = [w for w in self.workers if w.gone_at is None and w.ready <= t]
        if not ready:
            return None
        loads = [
            min(1.0, 0.05 + sum(task.cpu for task in w.running) / TASKS_PER_WORKER) for w in ready
        ]
        return 100.0 * statistics.fmean(loads)

    # -- one step -----------------------------------------------------------------------
    def step(self, t: float) -> None:
        while self.pending and self.pending[0].arrival <= t:
            self.queue.append(self.pending.popleft())
        for w in self.workers:
            if w.gone_at is not None:
                continue
            if w.running:
                done = [task for task in w.running if task.start + task.duration <= t]  # type: ignore[operator]
                for task in done:
                    task.end = task.start + task.duration  # type: ignore[operator]
                    w.running.remove(task)
            if w.doomed_at is not None and w.stop_at is None and w.doomed_at <= t:
                w.stop_at = t
            if w.stop_at is not None and (not w.running or t >= w.stop_at + STOP_TIMEOUT):
                for task in w.running:
                    task.killed = True
                    task.end = t
                w.running = []
                w.gone_at = t
        self._dispatch(t)
        if self.protection:
            self._monitors(t)

    def _dispatch(self, t: float) -> None:
        if not self.queue:
            return
        free = [
            w
            for w in self.workers
            if w.gone_at is None
            and w.stop_at is None
            and w.ready <= t
            and len(w.running) < TASKS_PER_WORKER
        ]
        while self.queue and free:
            w = self.rng.choice(free)
            task = self.queue.popleft()
            task.start = t
            w.running.append(task)
            if self.receipt_protection:
                self._on_receipt(w, t)
            if len(w.running) >= TASKS_PER_WORKER:
                free.remove(w)

    def _on_receipt(self, w: Worker, t: float) -> None:
        """task_protection.ReceiptProtector: marker, then a protection call (debounced)."""
        w.last_receipt = t
        if t < w.receipt_quiet_until:
            return
        received = t - self.receipt_rng.random()  # somewhere in this one-second step
        w.protect(received + PROTECTION_LATENCY, t + self.rules.expires_in_minutes * 60.0)
        w.receipt_quiet_until = t + self.rules.receipt_grace_seconds / 2

    def _monitors(self, t: float) -> None:
        for w in self.workers:
            if w.gone_at is not None or w.stop_at is not None:
                continue
            if w.monitor is None:
                if t < w.launched + CONTAINER_START:
                    continue
                w.monitor = tp.MonitorState(started_at=t)
                w.next_check = t
            if w.next_check > t:
                continue
            busy = any(task.start + PROC_TITLE_LAG <= t for task in w.running)  # type: ignore[operator]
            if self.receipt_protection:
                busy = busy or tp.received_recently(t - w.last_receipt, self.rules)
            action = tp.decide(w.monitor, busy, t, self.rules)
            if action is tp.Action.PROTECT:
                w.protect(t + PROTECTION_LATENCY, t + self.rules.expires_in_minutes * 60.0)
            elif action is tp.Action.RELEASE:
                w.protection = None
            w.monitor = tp.apply(w.monitor, busy, t, action, True, self.rules)
            w.next_check = t + tp.next_delay(w.monitor, t, self.rules)

    def reconcile(self, t: float) -> None:
        """ECS service scheduler: launch up to desiredCount; stop the excess it may stop."""
        active = [w for w in self.workers if w.active()]
        if len(active) < self.desired:
            for _ in range(self.desired - len(active)):
                boot = self.rng.uniform(60, 90)
                self.workers.append(Worker(len(self.workers), t, t + boot))
        elif len(active) > self.desired and int(t) % ECS_SCALE_IN_PERIOD == 0:
            candidates = [w for w in active if not (self.protection and w.protected(t))]
            self.rng.shuffle(candidates)
            candidates.sort(key=lambda w: w.ready <= t)  # not yet started ones first
            for w in candidates[: len(active) - self.desired]:
                if w.ready > t:
                    w.gone_at = t
                elif self.removal_delay:
                    w.doomed_at = t + self.removal_delay
                else:
                    w.stop_at = t
        alive = sum(1 for w in self.workers if w.gone_at is None)
        self.peak_workers = max(self.peak_workers, alive)

    def worker_hours(self, end: float) -> float:
        return sum(((w.gone_at or end) - w.launched) for w in self.workers) / 3600.0


# --- policies ------------------------------------------------------------------------------


class Ours:
    name = "ours"
    protection = True
    removal_delay = 0.0
    cooldown_seconds = 300.0  # SCALE_IN_COOLDOWN_SECONDS default
    receipt_protection = True

    def __init__(self, min_workers: int = MIN_WORKERS) -> None:
        self.policy = core.Policy(
            min_workers=min_workers,
            max_workers=MAX_WORKERS,
            tasks_per_worker=TASKS_PER_WORKER,
            cooldown_seconds=self.cooldown_seconds,
            max_gap_seconds=120,
        )
        if min_workers != MIN_WORKERS:
            self.name = f"ours, min {min_workers}"
        self.published: list[tuple[float, int, int, float]] = []  # (t, queued, running, visible)
        self.invocation: list[core.LoadPoint] = []
        self.history: list[core.LoadPoint] | None = None
        self.history_reads = 0
        self.unpublished: list[tuple[float, int, int]] = []

    def tick(self, t: float, cluster: Cluster) -> None:
        offset = int(t) % 60
        if offset == 0:
            self.invocation, self.history, self.history_reads = [], None, 0
        if offset % 5 == 0 and offset < 50:
            self._sample(t, cluster)
        if offset == 46:  # PutMetricData at the end of the invocation, readable 5 s later
            self.published += [(at, q, r, t + 5) for at, q, r in self.unpublished]
            self.unpublished = []

    def _sample(self, t: float, cluster: Cluster) -> None:
        queued, running = len(cluster.queue), cluster.running_tasks()
        obs = core.Observation(queued, running, cluster.desired, cluster.running_workers(t))
        history = None
        if core.wants_scale_in(self.policy, obs):
            if self.history is None and self.history_reads < 2:
                self.history_reads += 1
                self.history = self._read_history(t - self.policy.cooldown_seconds, t)
            history = self.history + self.invocation
        decision = core.decide(self.policy, obs, t, history)
        if decision.changes and decision.desired is not None:
            cluster.desired = decision.desired
        self.invocation.append(core.LoadPoint(t, t, queued + running))
        self.unpublished.append((t, queued, running))

    def _read_history(self, start: float, end: float) -> list[core.LoadPoint]:
        """As handler.AwsIO.read_history: per-minute max(queued) + max(running)."""
        first = math.floor(start / 60) * 60
        buckets: dict[float, list[int]] = {}
        for at, q, r, visible in self.published:
            if visible <= end and first <= at < end:
                bucket = buckets.setdefault(math.floor(at / 60) * 60, [0, 0])
                bucket[0], bucket[1] = max(bucket[0], q), max(bucket[1], r)
        return [core.LoadPoint(b, min(b + 60, end), q + r) for b, (q, r) in sorted(buckets.items())]


class MwaaLike:
    name = "mwaa-like"
    protection = False
    removal_delay = 60.0

    def __init__(self) -> None:
        self.metrics: dict[int, int] = {}
        self.zero_since: float | None = None

    def tick(self, t: float, cluster: Cluster) -> None:
        if int(t) % 60:
            return
        self.metrics[int(t)] = len(cluster.queue) + cluster.running_tasks()
        seen = self.metrics.get(int(t) - 60)  # one minute late
        if seen is None:
            return
        required = min(MAX_WORKERS, max(MIN_WORKERS, math.ceil(seen / TASKS_PER_WORKER)))
        if required > cluster.desired:
            cluster.desired = required
        if seen == 0:
            self.zero_since = t if self.zero_since is None else self.zero_since
            if t - self.zero_since >= 120:
                cluster.desired = MIN_WORKERS
        else:
            self.zero_since = None


class CpuTarget:
    name = "cpu-target"
    protection = False
    removal_delay = 0.0
    target = 70.0

    def __init__(self) -> None:
        self.points: list[float | None] = []
        self.last_out = -math.inf
        self.last_in = -math.inf

    def tick(self, t: float, cluster: Cluster) -> None:
        if int(t) % 60:
            return
        self.points.append(cluster.service_cpu(t))
        seen = self.points[:-1]  # one minute late
        running = cluster.running_workers(t)
        high = len(seen) >= 3 and all(p is not None and p > self.target for p in seen[-3:])
        if high and t - self.last_out >= 60:
            want = math.ceil(running * seen[-1] / self.target)  # type: ignore[operator]
            want = min(MAX_WORKERS, max(MIN_WORKERS, want))
            if want > cluster.desired:
                cluster.desired, self.last_out = want, t
        low = len(seen) >= 15 and all(p is not None and p < 0.9 * self.target for p in seen[-15:])
        if low and t - self.last_in >= 300 and t - self.last_out >= 300:
            want = math.ceil(running * seen[-1] / self.target)  # type: ignore[operator]
            want = min(MAX_WORKERS, max(MIN_WORKERS, want))
            if want < cluster.desired:
                cluster.desired, self.last_in = want, t


# --- traces --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    name: str
    horizon: float
    build: Callable[[random.Random], list[tuple[float, float, float]]]
    """(arrival, duration, cpu) per task."""


def _poisson(
    rng: random.Random, start: float, end: float, per_minute: float, dur: tuple[float, float]
) -> list[tuple[float, float, float]]:
    out, t = [], start
    while True:
        t += rng.expovariate(per_minute / 60.0)
        if t >= end:
            return out
        out.append((t, rng.uniform(*dur), rng.uniform(0.2, 1.0)))


def nightly_batch(rng: random.Random) -> list[tuple[float, float, float]]:
    # A fan-out of 150 tasks at 01:30, a second wave of 80 at 02:15 (3-20 min each).
    tasks = [
        (1800 + rng.uniform(0, 120), rng.uniform(180, 1200), rng.uniform(0.2, 1.0))
        for _ in range(150)
    ]
    tasks += [
        (4500 + rng.uniform(0, 60), rng.uniform(180, 900), rng.uniform(0.2, 1.0)) for _ in range(80)
    ]
    return tasks


def steady_trickle(rng: random.Random) -> list[tuple[float, float, float]]:
    return _poisson(rng, 0, 4 * 3600, 1.5, (60, 360))


def sudden_spike(rng: random.Random) -> list[tuple[float, float, float]]:
    tasks = _poisson(rng, 0, 3 * 3600, 0.5, (60, 300))
    tasks += [
        (3600 + rng.uniform(0, 30), rng.uniform(60, 180), rng.uniform(0.2, 1.0)) for _ in range(120)
    ]
    return tasks


def long_tasks_across_scale_in(rng: random.Random) -> list[tuple[float, float, float]]:
    # 8 tasks of 60-90 min start with 60 short ones; then a small task every ~10 min.
    tasks = [(600 + rng.uniform(0, 60), rng.uniform(3600, 5400), 0.3) for _ in range(8)]
    tasks += [
        (600 + rng.uniform(0, 60), rng.uniform(180, 360), rng.uniform(0.2, 1.0)) for _ in range(60)
    ]
    tasks += _poisson(rng, 900, 3 * 3600, 0.1, (30, 240))
    return tasks


TRACES = [
    Trace("nightly batch burst", 4 * 3600, nightly_batch),
    Trace("steady trickle", 4.5 * 3600, steady_trickle),
    Trace("sudden spike", 3.5 * 3600, sudden_spike),
    Trace("long tasks across a scale-in", 3.5 * 3600, long_tasks_across_scale_in),
]


# --- running and reporting -----------------------------------------------------------------


@dataclass
class Result:
    policy: str
    mean_wait: float
    p95_wait: float
    worker_hours: float
    killed: int
    peak_workers: int
    unfinished: int


def simulate(trace: Trace, make_policy: Callable[[], Ours | MwaaLike | CpuTarget], seed: int):
    rng = random.Random(seed)
    tasks = [Task(i, a, d, c) for i, (a, d, c) in enumerate(trace.build(rng))]
    policy = make_policy()
    cluster = Cluster(
        tasks,
        seed + 1,
        protection=policy.protection,
        removal_delay=policy.removal_delay,
        receipt_protection=getattr(policy, "receipt_protection", False),
    )
    end = trace.horizon
    t = 0.0
    while t < end:
        cluster.step(t)
        policy.tick(t, cluster)
        cluster.reconcile(t)
        t += 1.0
    waits = [((task.start if task.start is not None else end) - task.arrival) for task in tasks]
    waits.sort()
    p95 = waits[min(len(waits) - 1, math.ceil(0.95 * len(waits)) - 1)]
    return Result(
        policy=policy.name,
        mean_wait=statistics.fmean(waits),
        p95_wait=p95,
        worker_hours=cluster.worker_hours(end),
        killed=sum(task.killed for task in tasks),
        peak_workers=cluster.peak_workers,
        unfinished=sum(1 for task in tasks if task.end is None),
    )


POLICIES: list[Callable[[], Ours | MwaaLike | CpuTarget]] = [
    Ours,
    MwaaLike,
    CpuTarget,
    lambda: Ours(min_workers=0),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the per-trace tables")
    parser.add_argument(
        "--seeds", type=int, default=20, help="also sum kills etc. over seeds 1..N (0: skip)"
    )
    parser.add_argument("--cooldown", type=float, default=Ours.cooldown_seconds)
    parser.add_argument(
        "--no-receipt-protection",
        action="store_true",
        help="ours without protection on task receipt (the monitor alone, as before)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when ours misses a target on some trace (default: report it, exit 0)",
    )
    args = parser.parse_args(argv)
    Ours.cooldown_seconds = args.cooldown
    Ours.receipt_protection = not args.no_receipt_protection
    print(
        f"workers min {MIN_WORKERS} max {MAX_WORKERS}, {TASKS_PER_WORKER} tasks per worker; "
        f"ours: cool-down {args.cooldown:g}s, protection on task receipt "
        f"{'on' if Ours.receipt_protection else 'off'}; seed {args.seed}\n"
    )
    verdicts = []
    for trace in TRACES:
        results = [simulate(trace, make, args.seed) for make in POLICIES]
        n = len(trace.build(random.Random(args.seed)))
        print(f"### {trace.name} ({n} tasks, {trace.horizon / 3600:g} h)\n")
        print(
            "| policy | mean wait (s) | p95 wait (s) | worker-hours | tasks killed "
            "| peak workers | not finished |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r.policy} | {r.mean_wait:.1f} | {r.p95_wait:.1f} | {r.worker_hours:.2f} "
                f"| {r.killed} | {r.peak_workers} | {r.unfinished} |"
            )
        verdict = _verdict(results[0], results[1])
        verdicts.append(verdict)
        print(f"\nours vs mwaa-like (no kills, <= worker-hours, <= p95 wait): {verdict}\n")
    if args.seeds:
        _summary(args.seeds)
    missed = [v for v in verdicts if v != "met"]
    print(f"targets met on {len(verdicts) - len(missed)} of {len(verdicts)} traces")
    return 1 if args.strict and missed else 0


def _verdict(ours: Result, mwaa: Result) -> str:
    problems = []
    if ours.killed:
        problems.append(f"ours killed {ours.killed}")
    if ours.worker_hours > mwaa.worker_hours:
        problems.append(
            f"ours used {ours.worker_hours:.2f} worker-hours > mwaa-like {mwaa.worker_hours:.2f}"
        )
    if ours.p95_wait > mwaa.p95_wait:
        problems.append(f"ours p95 wait {ours.p95_wait:.1f}s > mwaa-like {mwaa.p95_wait:.1f}s")
    return "met" if not problems else "NOT met: " + "; ".join(problems)


def _summary(seeds: int) -> None:
    print(f"### all traces, seeds 1..{seeds} (sums over runs; hours and waits are means)\n")
    print(
        "| trace | tasks | killed ours / mwaa-like / cpu | worker-hours ours / mwaa-like "
        "| p95 wait ours / mwaa-like (s) | runs ours <= mwaa-like on hours, p95 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for trace in TRACES:
        tasks = 0
        killed = [0, 0, 0]
        hours = [0.0, 0.0]
        p95 = [0.0, 0.0]
        wins = [0, 0]
        for seed in range(1, seeds + 1):
            tasks += len(trace.build(random.Random(seed)))
            ours, mwaa, cpu = (simulate(trace, make, seed) for make in POLICIES[:3])
            for i, r in enumerate((ours, mwaa, cpu)):
                killed[i] += r.killed
            hours[0] += ours.worker_hours / seeds
            hours[1] += mwaa.worker_hours / seeds
            p95[0] += ours.p95_wait / seeds
            p95[1] += mwaa.p95_wait / seeds
            wins[0] += ours.worker_hours <= mwaa.worker_hours
            wins[1] += ours.p95_wait <= mwaa.p95_wait
        print(
            f"| {trace.name} | {tasks} | {killed[0]} / {killed[1]} / {killed[2]} "
            f"| {hours[0]:.2f} / {hours[1]:.2f} | {p95[0]:.1f} / {p95[1]:.1f} "
            f"| {wins[0]}/{seeds}, {wins[1]}/{seeds} |"
        )
    print()


if __name__ == "__main__":
    raise SystemExit(main())
