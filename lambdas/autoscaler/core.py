"""Pure decision core of the worker autoscaler: no boto3, no clock, no I/O.

Demand is ``queued + running`` Celery messages (see docs/autoscaling.md for what they count).
The target worker count is ``ceil(demand / tasks_per_worker)`` clamped to
``[min_workers, max_workers]``. Scale-out happens at once. Scale-in happens only to the count
that would have been enough for the peak demand of the whole cool-down window, and only when
the observations cover that window without a hole longer than ``max_gap_seconds``: missing
data never lowers the count.

The demand history lives behind :class:`DemandStore`, a port: the Lambda adapter implements it
on DynamoDB, :class:`MemoryStore` in memory (tests, simulations). Its lease makes overlapping
invocations impossible: a second one finds the lease held and exits at once.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Policy:
    """Scaling limits and timing, as configured on the construct."""

    min_workers: int
    max_workers: int
    tasks_per_worker: int
    cooldown_seconds: float = 300.0
    max_gap_seconds: float = 120.0
    """Longest hole in the demand history that still counts as "observed"."""

    def __post_init__(self) -> None:
        problems = policy_problems(
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            tasks_per_worker=self.tasks_per_worker,
            cooldown_seconds=self.cooldown_seconds,
            max_gap_seconds=self.max_gap_seconds,
        )
        if problems:
            raise ValueError("; ".join(problems))


def policy_problems(
    *,
    min_workers: int,
    max_workers: int,
    tasks_per_worker: int,
    cooldown_seconds: float,
    max_gap_seconds: float,
) -> list[str]:
    """Every problem with a policy, each naming the setting, the value and what is allowed."""
    problems: list[str] = []
    if min_workers < 0:
        problems.append(f"min_workers={min_workers}: must be >= 0")
    if max_workers < 1:
        problems.append(f"max_workers={max_workers}: must be >= 1")
    if min_workers > max_workers:
        problems.append(
            f"min_workers={min_workers} > max_workers={max_workers}: min must not exceed max"
        )
    if tasks_per_worker < 1:
        problems.append(f"tasks_per_worker={tasks_per_worker}: must be >= 1")
    if cooldown_seconds < 0:
        problems.append(f"cooldown_seconds={cooldown_seconds}: must be >= 0")
    if max_gap_seconds <= 0:
        problems.append(f"max_gap_seconds={max_gap_seconds}: must be > 0")
    return problems


@dataclass(frozen=True)
class Observation:
    """One sample of the inputs. ``None`` means the value could not be read."""

    queued: int | None
    """SQS ApproximateNumberOfMessages: tasks waiting for a worker."""
    running: int | None
    """SQS ApproximateNumberOfMessagesNotVisible: tasks held by a worker (acks_late)."""
    desired_workers: int | None
    """The worker service's desiredCount: the only thing the autoscaler changes."""
    running_workers: int | None = None
    """The worker service's runningCount (reported, not used to decide)."""

    @property
    def demand(self) -> int | None:
        """Tasks that need a worker slot now, or None if either count is missing."""
        if self.queued is None or self.running is None:
            return None
        return max(0, self.queued) + max(0, self.running)


@dataclass(frozen=True)
class LoadPoint:
    """Peak demand observed over ``[start, end]`` (epoch seconds; a sample has start == end)."""

    start: float
    end: float
    peak: int


class Action(enum.Enum):
    HOLD = "hold"
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"


@dataclass(frozen=True)
class Decision:
    action: Action
    current: int | None
    """desiredCount before the decision."""
    desired: int | None
    """desiredCount after the decision (== current on HOLD)."""
    target: int | None
    """What the demand of this instant alone asks for."""
    reason: str

    @property
    def changes(self) -> bool:
        return self.action is not Action.HOLD and self.desired != self.current


def workers_for(demand: int, policy: Policy) -> int:
    """ceil(demand / tasks_per_worker), clamped to [min_workers, max_workers]."""
    needed = math.ceil(max(0, demand) / policy.tasks_per_worker)
    return min(policy.max_workers, max(policy.min_workers, needed))


def wants_scale_in(policy: Policy, observation: Observation) -> bool:
    """True when the instant demand alone would lower the count (history is then needed)."""
    demand = observation.demand
    current = observation.desired_workers
    if demand is None or current is None:
        return False
    return workers_for(demand, policy) < min(current, policy.max_workers)


def covers(points: Iterable[LoadPoint], start: float, end: float, max_gap: float) -> bool:
    """True if the points reach back to ``start`` and leave no hole longer than ``max_gap``.

    Some point must begin at or before ``start`` (a history that begins later is too short,
    whatever its holes). From the last thing observed at or before ``start`` to ``end``, every
    stretch without an observation must be at most ``max_gap`` long: a hole that straddles the
    window start counts in full, so one low sample just inside the window is never enough.
    """
    ordered = sorted((p for p in points if p.start <= end), key=_start)
    earlier = [p for p in ordered if p.start <= start]
    if not earlier:
        return False
    cursor = max(p.end for p in earlier)
    for point in ordered:
        if point.start <= start:
            continue
        if point.start - cursor > max_gap:
            return False
        cursor = max(cursor, point.end)
    return end - cursor <= max_gap


def max_gap_for(
    sample_interval: float,
    budget: float,
    schedule_period: float = 60.0,
    delivery_allowance: float = 15.0,
) -> float:
    """The longest hole in the demand history that still counts as observed.

    One invocation every ``schedule_period`` samples every ``sample_interval`` for ``budget``
    seconds, so consecutive samples are at most one interval apart, except across the pause
    between two invocations: ``schedule_period - budget + sample_interval`` (15 s with the
    defaults), plus ``delivery_allowance`` for EventBridge delivering one run a little later
    than the one before. A lost invocation leaves a whole ``schedule_period`` more than that,
    so it is never tolerated.
    """
    pause = max(0.0, schedule_period - budget) + sample_interval
    return max(pause, sample_interval) + delivery_allowance


def _start(point: LoadPoint) -> float:
    return point.start


def peak_demand(points: Iterable[LoadPoint], start: float, end: float) -> int | None:
    """Highest demand among the points overlapping ``[start, end]``, or None if there is none."""
    peaks = [p.peak for p in points if p.end >= start and p.start <= end]
    return max(peaks) if peaks else None


def decide(
    policy: Policy,
    observation: Observation,
    now: float,
    history: Sequence[LoadPoint] | None,
) -> Decision:
    """Decide the worker service's desiredCount.

    ``history`` is the demand seen before ``now`` (published metrics read back plus the samples
    of this invocation); ``None`` means it could not be read. The current observation is added
    to it here, so callers need not include it.
    """
    current = observation.desired_workers
    demand = observation.demand
    if current is None or demand is None:
        missing = [
            name
            for name, value in (
                ("queued", observation.queued),
                ("running", observation.running),
                ("desired_workers", current),
            )
            if value is None
        ]
        return Decision(
            Action.HOLD, current, current, None, f"missing input {', '.join(missing)}: holding"
        )

    target = workers_for(demand, policy)
    if current > policy.max_workers:
        return Decision(
            Action.SCALE_IN,
            current,
            policy.max_workers,
            target,
            f"desiredCount {current} is above max_workers {policy.max_workers}: clamping",
        )
    if target > current:
        return Decision(
            Action.SCALE_OUT,
            current,
            target,
            target,
            f"demand {demand} needs {target} workers (have {current})",
        )
    if target == current:
        return Decision(Action.HOLD, current, current, target, f"demand {demand} fits {current}")

    # target < current: scale in only to what the whole cool-down window needed.
    if history is None:
        return Decision(
            Action.HOLD,
            current,
            current,
            target,
            "demand history unavailable: not scaling in on missing data",
        )
    window_start = now - policy.cooldown_seconds
    points = [*history, LoadPoint(now, now, demand)]
    if not covers(points, window_start, now, policy.max_gap_seconds):
        return Decision(
            Action.HOLD,
            current,
            current,
            target,
            f"demand history has a hole longer than {policy.max_gap_seconds:g}s in the last "
            f"{policy.cooldown_seconds:g}s: not scaling in on missing data",
        )
    peak = peak_demand(points, window_start, now)
    assert peak is not None  # covers() found at least the current point
    floor = workers_for(peak, policy)
    desired = min(current, max(target, floor))
    if desired >= current:
        return Decision(
            Action.HOLD,
            current,
            current,
            target,
            f"cool-down: demand peaked at {peak} in the last {policy.cooldown_seconds:g}s "
            f"({floor} workers)",
        )
    return Decision(
        Action.SCALE_IN,
        current,
        desired,
        target,
        f"demand stayed <= {peak} for {policy.cooldown_seconds:g}s: {current} -> {desired}",
    )


@dataclass(frozen=True)
class ServiceCount:
    """One ECS service of the environment, as DescribeServices reported it."""

    component: str
    """The component it runs (``scheduler``, ``worker:<queue>`` for a pool...): the value of
    the metric's ``Service`` dimension and of the alarm's key."""
    desired: int
    running: int

    @property
    def below_desired(self) -> int:
        """Tasks the service wants but does not run (desired - running, never below 0): a
        deployment's extra tasks do not hide a missing one elsewhere, and they never count."""
        return max(0, self.desired - self.running)


@dataclass(frozen=True)
class ServiceSnapshot:
    """Every watched service's counts, read once at ``at`` (epoch seconds)."""

    at: float
    counts: tuple[ServiceCount, ...]

    def below_desired(self) -> dict[str, int]:
        """``TasksBelowDesired`` by component."""
        return {count.component: count.below_desired for count in self.counts}


class DemandStore(Protocol):
    """Where the cool-down's demand history and the invocation lease live (a port).

    ``acquire_lease`` is a conditional write: it succeeds only when no other owner holds an
    unexpired lease, so two invocations never sample and act at the same time.
    """

    def acquire_lease(self, owner: str, now: float, until: float) -> bool:
        """Take the lease until ``until``; False if another owner holds it past ``now``."""
        ...

    def release_lease(self, owner: str) -> None:
        """Give the lease back, only if ``owner`` still holds it."""
        ...

    def record_sample(self, at: float, demand: int) -> None:
        """Store one observed demand sample."""
        ...

    def read_history(self, start: float, end: float) -> list[LoadPoint]:
        """Every stored sample in ``[start, end]``, as points (read-after-write consistent)."""
        ...


@dataclass
class MemoryStore:
    """A :class:`DemandStore` in memory, with the same lease rules as the DynamoDB one."""

    samples: dict[float, int] = field(default_factory=dict)
    holder: str | None = None
    held_until: float = float("-inf")

    def acquire_lease(self, owner: str, now: float, until: float) -> bool:
        if self.holder is not None and self.holder != owner and self.held_until >= now:
            return False
        self.holder, self.held_until = owner, until
        return True

    def release_lease(self, owner: str) -> None:
        if self.holder == owner:
            self.holder, self.held_until = None, float("-inf")

    def record_sample(self, at: float, demand: int) -> None:
        self.samples[at] = demand

    def read_history(self, start: float, end: float) -> list[LoadPoint]:
        return [LoadPoint(t, t, d) for t, d in sorted(self.samples.items()) if start <= t <= end]
