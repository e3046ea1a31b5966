"""The autoscaler's sampling loop: pure, driven through ports (no boto3, no real clock).

One invocation takes the lease of the :class:`~autoscaler.core.DemandStore`; if another
invocation holds it, it exits at once, so two invocations never sample and act at the same
time. Holding the lease, it samples every ``sample_interval_seconds`` while the clock leaves
time for a whole sample inside the budget: read the queue and the service, store the demand,
decide with :mod:`autoscaler.core`, set the service's desired count when the decision says so.
At the end it reads every watched service's counts once (the ``service_below_desired`` alarms'
TasksBelowDesired, which needs no Container Insights), publishes them with every sample in one
call and releases the lease. The cool-down's
demand history is read back from the store (only when a scale-in is being considered), so what
the previous invocation saw is always readable; the metrics are for people, not for decisions.

Everything it reads and changes goes through :class:`InvocationIO` (the AWS adapter is
:class:`autoscaler.aws_ports.AwsIO`); time goes through an injected ``clock`` and ``sleep``.
Every failure of a port call is an :class:`AwsCallError`: it is logged and recorded, and the
count is held: a failed read never lowers the desired count, and the loop never stops tasks
itself. Without the store (an error, not
a lease held by another run) the loop still scales out, and never scales in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler import core

LOG = logging.getLogger("openmwaa.autoscaler")
LOG.setLevel(logging.INFO)

MAX_HISTORY_READS_PER_INVOCATION = 2
RESERVE_SECONDS = 5.0
"""Kept free at the end of an invocation for the final publish and the lease release."""
LEASE_MARGIN_SECONDS = 5.0
"""Added to the lease beyond the moment Lambda stops the invocation (clock differences)."""

Clock = Callable[[], float]
"""Epoch seconds now (the adapter passes ``time.time``, a simulator a virtual clock)."""
Sleep = Callable[[float], None]
"""Wait that many seconds (``time.sleep``, or advancing a virtual clock)."""


class AwsCallError(Exception):
    """A port call (an AWS call, in the adapter) failed or answered something unusable."""

    def __init__(self, operation: str, detail: str, code: str | None = None) -> None:
        super().__init__(f"{operation} failed ({detail})")
        self.operation = operation
        self.detail = detail
        self.code = code


class LoopSettings(Protocol):
    """What the loop needs of the settings (:class:`autoscaler.settings.Settings` has it)."""

    @property
    def policy(self) -> core.Policy: ...

    @property
    def sample_interval_seconds(self) -> float: ...

    @property
    def invocation_budget_seconds(self) -> float: ...


@dataclass(frozen=True)
class Sample:
    at: float
    observation: core.Observation
    decision: core.Decision


class InvocationIO(core.DemandStore, Protocol):
    """Everything an invocation reads and changes (the port :func:`run_invocation` drives).

    Each method raises :class:`AwsCallError` when it fails.
    """

    def read_queue(self) -> tuple[int, int]:
        """(queued, running) tasks of the broker queue."""
        ...

    def read_service(self) -> tuple[int, int]:
        """(desired, running) workers of the worker service."""
        ...

    def set_desired_count(self, count: int) -> None:
        """Set the worker service's desired count."""
        ...

    def read_services(self) -> list[core.ServiceCount]:
        """Desired and running tasks of every watched service (none: an empty list)."""
        ...

    def publish(
        self, samples: Sequence[Sample], services: core.ServiceSnapshot | None = None
    ) -> int:
        """Publish the samples, and the services' TasksBelowDesired, as metrics; returns the
        number of calls it took."""
        ...


@dataclass
class InvocationSummary:
    samples: list[Sample] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lease: str = "held"
    """"held", "busy" (another invocation holds it: this one did nothing) or "unavailable"
    (the table failed: scale-out only)."""
    put_metric_data_calls: int = 0
    history_reads: int = 0
    services: core.ServiceSnapshot | None = None
    """The watched services' counts, read once at the end (None: none watched, or unread)."""

    def as_dict(self) -> dict[str, Any]:
        last = self.samples[-1].decision if self.samples else None
        return {
            "lease": self.lease,
            "samples": len(self.samples),
            "changes": list(self.changes),
            "errors": list(self.errors),
            "desired_workers": last.desired if last else None,
            "last_decision": last.reason if last else None,
            "put_metric_data_calls": self.put_metric_data_calls,
            "history_reads": self.history_reads,
            "tasks_below_desired": self.services.below_desired() if self.services else None,
        }


def time_limits(
    budget_seconds: float, remaining_seconds: float | None
) -> tuple[float, float | None]:
    """(budget, lease) of an invocation that has ``remaining_seconds`` before Lambda stops it.

    The budget shrinks to leave :data:`RESERVE_SECONDS` for publishing; the lease lasts until
    Lambda stops the run plus a margin, so it outlives any call still in flight. Without a
    known remaining time: the configured budget and the default lease (None).
    """
    if remaining_seconds is None:
        return budget_seconds, None
    budget = max(0.0, min(budget_seconds, remaining_seconds - RESERVE_SECONDS))
    return budget, remaining_seconds + LEASE_MARGIN_SECONDS


def observe(io: InvocationIO, summary: InvocationSummary) -> core.Observation:
    """Read queue and service; a failed read leaves its fields None (and is logged)."""
    queued: int | None = None
    running: int | None = None
    desired: int | None = None
    running_workers: int | None = None
    try:
        queued, running = io.read_queue()
    except AwsCallError as error:
        _log_error(summary, error)
    try:
        desired, running_workers = io.read_service()
    except AwsCallError as error:
        _log_error(summary, error)
    return core.Observation(queued, running, desired, running_workers)


def _log_error(summary: InvocationSummary, error: AwsCallError) -> None:
    summary.errors.append(str(error))
    LOG.warning("%s; holding desiredCount (never scaling in on missing data)", error)


def run_invocation(
    settings: LoopSettings,
    io: InvocationIO,
    *,
    clock: Clock,
    sleep: Sleep,
    owner: str,
    budget_seconds: float | None = None,
    lease_seconds: float | None = None,
) -> InvocationSummary:
    """Take the lease as ``owner``, then sample, decide and act every interval; then publish.

    A sample starts only if the clock leaves room for it, as long as the slowest sample so far,
    before ``budget_seconds`` (default: the settings') are spent. The lease lasts
    ``lease_seconds`` (default: the budget plus the publishing reserve plus a margin; the
    handler passes the time Lambda gives the invocation plus the margin, see
    :func:`time_limits`).
    """
    budget = settings.invocation_budget_seconds if budget_seconds is None else budget_seconds
    budget = max(0.0, budget)
    started = clock()
    deadline = started + budget
    summary = InvocationSummary()
    if lease_seconds is None:
        lease_seconds = budget + RESERVE_SECONDS + LEASE_MARGIN_SECONDS
    try:
        acquired = io.acquire_lease(owner, started, started + lease_seconds)
    except AwsCallError as error:
        summary.errors.append(str(error))
        summary.lease = "unavailable"
        LOG.error("%s; scaling out only, never in, in this invocation", error)
    else:
        if not acquired:
            summary.lease = "busy"
            LOG.info("another invocation holds the lease: exiting without sampling")
            return summary
    try:
        _sample_until(settings, io, summary, clock, sleep, started, deadline)
    finally:
        if summary.lease == "held":
            try:
                io.release_lease(owner)
            except AwsCallError as error:
                summary.errors.append(str(error))
                LOG.warning("%s; the lease expires by itself", error)
    last = summary.samples[-1].decision if summary.samples else None
    LOG.info(
        "invocation: %d samples, %d changes, %d errors, desiredCount %s (%s)",
        len(summary.samples),
        len(summary.changes),
        len(summary.errors),
        last.desired if last else None,
        last.reason if last else "no sample",
    )
    return summary


def _sample_until(
    settings: LoopSettings,
    io: InvocationIO,
    summary: InvocationSummary,
    clock: Clock,
    sleep: Sleep,
    started: float,
    deadline: float,
) -> None:
    policy = settings.policy
    use_store = summary.lease == "held"
    stored: list[core.LoadPoint] | None = None
    slowest = 0.0
    at = started
    while True:
        observation = observe(io, summary)
        demand = observation.demand
        if use_store and demand is not None:
            try:
                io.record_sample(at, demand)  # before acting: the next run sees this peak
            except AwsCallError as error:
                _log_error(summary, error)
        history: list[core.LoadPoint] | None = None
        if use_store and core.wants_scale_in(policy, observation):
            if stored is None and summary.history_reads < MAX_HISTORY_READS_PER_INVOCATION:
                summary.history_reads += 1
                try:
                    stored = io.read_history(
                        at - policy.cooldown_seconds - policy.max_gap_seconds, at
                    )
                except AwsCallError as error:
                    _log_error(summary, error)
            if stored is not None:
                history = stored + _sample_points(summary.samples)
        decision = _act(io, summary, core.decide(policy, observation, at, history))
        summary.samples.append(Sample(at, observation, decision))

        now = clock()
        slowest = max(slowest, now - at)
        next_at = max(at + settings.sample_interval_seconds, now)
        if next_at + slowest >= deadline:
            break  # a sample started then could not finish inside the budget
        if next_at > now:
            sleep(next_at - now)
        at = clock()

    summary.services = read_services(io, summary, clock)
    try:
        summary.put_metric_data_calls = io.publish(summary.samples, summary.services)
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.error("%s; %d samples not published", error, len(summary.samples))


def read_services(
    io: InvocationIO, summary: InvocationSummary, clock: Clock
) -> core.ServiceSnapshot | None:
    """Every watched service's counts, stamped with the clock; None when none is watched or
    the read failed (logged): the alarms then get no data for this minute, which never fires
    them."""
    try:
        counts = io.read_services()
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.warning("%s; no TasksBelowDesired published this minute", error)
        return None
    if not counts:
        return None
    return core.ServiceSnapshot(clock(), tuple(counts))


def _act(io: InvocationIO, summary: InvocationSummary, decision: core.Decision) -> core.Decision:
    if not (decision.changes and decision.desired is not None):
        LOG.debug("%s", decision.reason)
        return decision
    try:
        io.set_desired_count(decision.desired)
    except AwsCallError as error:
        summary.errors.append(str(error))
        LOG.error(
            "%s; desiredCount stays %s (wanted %s, retrying next sample)",
            error,
            decision.current,
            decision.desired,
        )
        return core.Decision(
            core.Action.HOLD,
            decision.current,
            decision.current,
            decision.target,
            f"update failed: {error}",
        )
    change = (
        f"{decision.action.value} desiredCount {decision.current} -> "
        f"{decision.desired}: {decision.reason}"
    )
    summary.changes.append(change)
    LOG.info("%s", change)
    return decision


def _sample_points(samples: Sequence[Sample]) -> list[core.LoadPoint]:
    points = []
    for sample in samples:
        demand = sample.observation.demand
        if demand is not None:
            points.append(core.LoadPoint(sample.at, sample.at, demand))
    return points
