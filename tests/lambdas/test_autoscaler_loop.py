"""The autoscaler's sampling loop on in-memory fakes of its port and a fake clock.

No moto and no sleeping: :class:`FakeCluster` implements ``loop.InvocationIO`` (a queue, a
service, ``core.MemoryStore`` for the lease and the demand history, per-operation failures and
call durations) and :class:`FakeClock` is the only time there is. The same loop against the
boto3 adapter and moto is tested in test_autoscaler_handler.py.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autoscaler import core, loop
from autoscaler.loop import AwsCallError, InvocationSummary, Sample
from tests.lambdas.fake_clock import FakeClock

T0 = 1_700_000_040.0
POLICY = core.Policy(
    min_workers=1, max_workers=10, tasks_per_worker=5, cooldown_seconds=300, max_gap_seconds=30
)


@dataclass(frozen=True)
class Config:
    """What the loop needs of the settings (``loop.LoopSettings``)."""

    policy: core.Policy = POLICY
    sample_interval_seconds: float = 5.0
    invocation_budget_seconds: float = 50.0


@dataclass
class FakeCluster:
    """``loop.InvocationIO`` in memory: the broker queue, the worker service and the table."""

    clock: FakeClock
    queued: int = 0
    running: int = 0
    desired: int = 1
    store: core.MemoryStore = field(default_factory=core.MemoryStore)
    failures: dict[str, int] = field(default_factory=dict)
    """Operation -> how many of its next calls fail (-1: all of them)."""
    durations: dict[str, float] = field(default_factory=dict)
    """Operation -> how long each of its calls takes on the clock."""
    calls: list[str] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    published: list[tuple[float, list[Sample]]] = field(default_factory=list)
    services: list[core.ServiceCount] = field(default_factory=list)
    """What ``read_services`` answers (the watched services' counts)."""
    published_services: list[core.ServiceSnapshot | None] = field(default_factory=list)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        self.clock.t += self.durations.get(operation, 0.0)
        left = self.failures.get(operation, 0)
        if left:
            self.failures[operation] = left - 1 if left > 0 else left
            raise AwsCallError(operation, "ThrottlingException: Rate exceeded", "Throttling")

    def read_queue(self) -> tuple[int, int]:
        self._call("read_queue")
        return self.queued, self.running

    def read_service(self) -> tuple[int, int]:
        self._call("read_service")
        return self.desired, self.desired

    def set_desired_count(self, count: int) -> None:
        self._call("set_desired_count")
        self.desired = count
        self.updates.append(count)

    def read_services(self) -> list[core.ServiceCount]:
        self._call("read_services")
        return list(self.services)

    def publish(
        self, samples: Sequence[Sample], services: core.ServiceSnapshot | None = None
    ) -> int:
        self._call("publish")
        self.published.append((self.clock.t, list(samples)))
        self.published_services.append(services)
        return 1

    def acquire_lease(self, owner: str, now: float, until: float) -> bool:
        self._call("acquire_lease")
        return self.store.acquire_lease(owner, now, until)

    def release_lease(self, owner: str) -> None:
        self._call("release_lease")
        self.store.release_lease(owner)

    def record_sample(self, at: float, demand: int) -> None:
        self._call("record_sample")
        self.store.record_sample(at, demand)

    def read_history(self, start: float, end: float) -> list[core.LoadPoint]:
        self._call("read_history")
        return self.store.read_history(start, end)

    def history(self, start: float, end: float, demand: int) -> None:
        """Stored samples every 5 s over [start, end), as earlier invocations left them."""
        t = start
        while t < end:
            self.store.record_sample(t, demand)
            t += 5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def cluster(clock: FakeClock) -> FakeCluster:
    return FakeCluster(clock)


def run(
    cluster: FakeCluster, config: Config | None = None, owner: str = "run", **kw: Any
) -> InvocationSummary:
    clock = cluster.clock
    return loop.run_invocation(
        config or Config(), cluster, clock=clock.now, sleep=clock.sleep, owner=owner, **kw
    )


def minutes(
    cluster: FakeCluster, count: int, config: Config | None = None
) -> list[tuple[int, Sample]]:
    """One invocation a minute, as EventBridge runs them; every sample that changed the count."""
    changed = []
    for minute in range(count):
        start = cluster.clock.t
        summary = run(cluster, config, owner=f"run-{minute}")
        changed += [(minute, s) for s in summary.samples if s.decision.changes]
        cluster.clock.sleep(start + 60 - cluster.clock.t)
    return changed


# --- timing ------------------------------------------------------------------------------


def test_samples_every_interval_while_the_budget_lasts(cluster, clock):
    summary = run(cluster)
    assert [s.at - T0 for s in summary.samples] == list(range(0, 50, 5))
    assert sum(clock.slept) == 45
    assert summary.lease == "held" and summary.errors == [] and summary.changes == []
    assert cluster.published == [(T0 + 45, summary.samples)]
    assert summary.put_metric_data_calls == 1


def test_a_zero_budget_takes_one_sample_and_never_sleeps(cluster, clock):
    summary = run(cluster, budget_seconds=0)
    assert len(summary.samples) == 1 and clock.slept == []


def test_the_budget_ends_the_loop(cluster):
    summary = run(cluster, Config(invocation_budget_seconds=12))
    assert [s.at - T0 for s in summary.samples] == [0, 5, 10]


def test_never_starts_a_sample_that_cannot_finish_within_the_budget(cluster, clock):
    # Queue reads take 8 s from 40 s on: the sample at 40 ends at 48, one at 48 would end at 56.
    clock.at(39, lambda: cluster.durations.update(read_queue=8.0))
    summary = run(cluster)
    assert [s.at - T0 for s in summary.samples] == list(range(0, 45, 5))
    publish_at, _ = cluster.published[0]
    assert publish_at == T0 + 48 <= T0 + Config().invocation_budget_seconds


def test_a_slow_sample_delays_the_next_instead_of_overlapping_it(cluster):
    cluster.durations["read_service"] = 7.0  # each sample takes 7 s, longer than the interval
    summary = run(cluster)
    starts = [s.at - T0 for s in summary.samples]
    assert starts == [0, 7, 14, 21, 28, 35, 42]  # the next would end at 49 + 7 > 50


def test_time_limits_leave_the_reserve_and_lease_until_lambda_stops_the_run():
    assert loop.time_limits(50.0, None) == (50.0, None)
    assert loop.time_limits(50.0, 59.0) == (50.0, 59.0 + loop.LEASE_MARGIN_SECONDS)
    assert loop.time_limits(50.0, 30.0) == (30.0 - loop.RESERVE_SECONDS, 35.0)
    assert loop.time_limits(50.0, 4.0) == (0.0, 9.0)


# --- scaling ------------------------------------------------------------------------------


def test_scales_out_at_once(cluster):
    cluster.queued, cluster.running = 8, 4  # 12 tasks -> 3 workers
    summary = run(cluster, budget_seconds=0)
    assert cluster.updates == [3]
    assert summary.changes[0].startswith("scale_out desiredCount 1 -> 3")
    assert "read_history" not in cluster.calls  # scale-out never waits for history


def test_reacts_within_one_sample_to_tasks_entering_the_queue(cluster, clock):
    clock.at(12, lambda: setattr(cluster, "queued", 23))
    summary = run(cluster)
    first = next(s for s in summary.samples if s.decision.changes)
    assert first.at - T0 == 15 and cluster.updates == [5]


def test_scale_out_is_capped_at_max_workers(cluster):
    cluster.queued = 500
    run(cluster, budget_seconds=0)
    assert cluster.updates == [10]


def test_scales_in_only_after_a_whole_cooldown_of_low_demand(cluster):
    cluster.desired = 6
    changed = minutes(cluster, 7)
    assert [(m, s.decision.action, s.decision.desired) for m, s in changed] == [
        (5, core.Action.SCALE_IN, 1)
    ]
    _minute, sample = changed[0]
    assert sample.at - T0 == POLICY.cooldown_seconds  # the first moment the window is covered
    assert cluster.updates == [1]


def test_scales_in_at_once_when_the_stored_history_covers_the_cooldown(cluster, clock):
    cluster.desired = 6
    cluster.history(clock.t - 400, clock.t - 10, demand=2)
    summary = run(cluster, budget_seconds=0)
    assert cluster.updates == [1] and summary.history_reads == 1
    assert "scale_in desiredCount 6 -> 1" in summary.changes[0]


def test_scales_in_only_to_what_the_cooldown_peak_needed(cluster, clock):
    cluster.desired = 6
    cluster.history(clock.t - 400, clock.t - 130, demand=0)
    cluster.history(clock.t - 130, clock.t - 10, demand=19)  # 19 tasks -> 4 workers
    run(cluster, budget_seconds=0)
    assert cluster.updates == [4]


def test_holds_without_a_history_that_covers_the_cooldown(cluster):
    cluster.desired = 6
    summary = run(cluster)
    assert cluster.updates == [] and "hole" in summary.samples[-1].decision.reason
    assert summary.history_reads == 1  # read once, then this invocation's samples are added


def test_every_demand_sample_is_stored_before_acting(cluster):
    cluster.queued = 7
    summary = run(cluster, budget_seconds=10)
    assert cluster.store.samples == {s.at: 7 for s in summary.samples}
    assert cluster.calls.index("record_sample") < cluster.calls.index("set_desired_count")


# --- failures -----------------------------------------------------------------------------


def test_a_failed_read_holds_that_sample_and_the_loop_goes_on(cluster):
    cluster.queued = 40
    cluster.failures["read_queue"] = 1
    summary = run(cluster)
    first, second, *_ = summary.samples
    assert first.decision.reason.startswith("missing input queued, running")
    assert first.decision.desired == 1 and second.decision.desired == 8
    assert len(summary.samples) == 10 and cluster.updates == [8]
    assert summary.errors == ["read_queue failed (ThrottlingException: Rate exceeded)"]


def test_a_failed_service_read_never_changes_the_count(cluster):
    cluster.queued = 40
    cluster.failures["read_service"] = -1
    summary = run(cluster)
    assert cluster.updates == [] and "set_desired_count" not in cluster.calls
    assert len(summary.samples) == 10 and len(summary.errors) == 10
    assert "record_sample" in cluster.calls  # the demand was read: it is still stored


def test_a_failed_update_is_held_and_retried_next_sample(cluster, caplog):
    cluster.queued = 40
    cluster.failures["set_desired_count"] = 1
    with caplog.at_level("WARNING", logger="openmwaa.autoscaler"):
        summary = run(cluster, budget_seconds=10)
    assert summary.samples[0].decision.action is core.Action.HOLD
    assert summary.samples[0].decision.reason.startswith("update failed: set_desired_count")
    assert summary.samples[1].decision.desired == 8 and cluster.updates == [8]
    assert "desiredCount stays 1 (wanted 8" in caplog.text


def test_a_failed_history_read_never_scales_in_and_is_retried_at_most_twice(cluster, clock):
    cluster.desired = 6
    cluster.history(clock.t - 400, clock.t - 10, demand=0)
    cluster.failures["read_history"] = -1
    summary = run(cluster)
    assert cluster.updates == [] and summary.history_reads == loop.MAX_HISTORY_READS_PER_INVOCATION
    assert cluster.calls.count("read_history") == loop.MAX_HISTORY_READS_PER_INVOCATION
    assert summary.samples[-1].decision.reason.startswith("demand history unavailable")


def test_a_failed_history_read_still_scales_out(cluster):
    cluster.queued = 30
    cluster.failures["read_history"] = -1
    run(cluster, budget_seconds=0)
    assert cluster.updates == [6]


def test_a_sample_that_could_not_be_stored_is_reported_and_acted_on(cluster):
    cluster.queued = 30
    cluster.failures["record_sample"] = 1
    summary = run(cluster, budget_seconds=0)
    assert summary.errors == ["record_sample failed (ThrottlingException: Rate exceeded)"]
    assert cluster.store.samples == {} and cluster.updates == [6]


def test_a_failed_publish_is_reported_and_the_invocation_completes(cluster, caplog):
    cluster.queued = 12
    cluster.failures["publish"] = -1
    with caplog.at_level("WARNING", logger="openmwaa.autoscaler"):
        summary = run(cluster, budget_seconds=15)
    assert summary.put_metric_data_calls == 0 and cluster.updates == [3]
    assert "3 samples not published" in caplog.text
    assert cluster.store.holder is None  # the lease is released all the same


# --- the lease ----------------------------------------------------------------------------


def test_a_held_lease_ends_the_invocation_before_any_sample(cluster, clock):
    assert cluster.store.acquire_lease("other", clock.t, clock.t + 60)
    summary = run(cluster)
    assert (summary.lease, summary.samples, clock.slept) == ("busy", [], [])
    assert cluster.calls == ["acquire_lease"]
    assert summary.as_dict()["samples"] == 0 and summary.as_dict()["desired_workers"] is None


def test_the_lease_lasts_the_budget_plus_reserve_and_margin_and_is_released(cluster, clock):
    leases: list[tuple[str, float]] = []
    acquire = cluster.store.acquire_lease

    def spy(owner: str, now: float, until: float) -> bool:
        leases.append((owner, until - now))
        return acquire(owner, now, until)

    cluster.store.acquire_lease = spy  # type: ignore[method-assign]
    run(cluster, owner="a")
    run(cluster, owner="b", lease_seconds=64.0)
    assert leases == [("a", 50 + loop.RESERVE_SECONDS + loop.LEASE_MARGIN_SECONDS), ("b", 64.0)]
    assert cluster.calls.count("release_lease") == 2 and cluster.store.holder is None


def test_an_expired_lease_is_taken_over(cluster, clock):
    assert cluster.store.acquire_lease("crashed", clock.t - 70, clock.t - 1)
    summary = run(cluster, budget_seconds=0)
    assert summary.lease == "held" and len(summary.samples) == 1


def test_without_the_store_it_scales_out_but_never_in(cluster, clock, caplog):
    cluster.desired = 6
    cluster.history(clock.t - 400, clock.t - 10, demand=0)
    cluster.failures["acquire_lease"] = -1
    with caplog.at_level("WARNING", logger="openmwaa.autoscaler"):
        summary = run(cluster)
    assert summary.lease == "unavailable" and cluster.updates == []
    assert "scaling out only, never in" in caplog.text
    assert not {"record_sample", "read_history", "release_lease"} & set(cluster.calls)
    cluster.queued = 40
    run(cluster, budget_seconds=0)
    assert cluster.updates == [8]


def test_a_failed_release_is_reported_and_the_lease_expires_by_itself(cluster):
    cluster.failures["release_lease"] = 1
    summary = run(cluster, budget_seconds=0)
    assert summary.errors == ["release_lease failed (ThrottlingException: Rate exceeded)"]
    assert cluster.store.holder == "run"


def test_an_unexpected_error_still_releases_the_lease(cluster):
    def broken() -> tuple[int, int]:
        raise RuntimeError("bug")

    cluster.read_queue = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="bug"):
        run(cluster)
    assert cluster.store.holder is None


def test_an_overlapping_invocation_cannot_undo_a_scale_out(cluster, clock):
    minutes(cluster, 5)  # five quiet minutes at 1 worker: a complete, low history
    cluster.queued = 20
    clock.at(12, lambda: setattr(cluster, "queued", 0))
    second: dict[str, InvocationSummary] = {}
    clock.at(20, lambda: second.setdefault("summary", run(cluster, owner="second")))
    first = run(cluster, owner="first")
    assert first.changes and first.changes[0].startswith("scale_out desiredCount 1 -> 4")
    assert second["summary"].lease == "busy" and second["summary"].changes == []
    assert cluster.desired == 4


# --- purity -------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["core", "loop"])
def test_the_core_and_the_loop_import_no_aws_and_no_clock(module: str) -> None:
    source = Path(loop.__file__).with_name(f"{module}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"boto3", "botocore", "time", "uuid", "random", "os"}, imported
