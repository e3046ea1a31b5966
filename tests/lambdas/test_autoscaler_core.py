"""The autoscaler's pure decision core: properties (hypothesis) and plain examples."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autoscaler import core
from autoscaler.core import Action, LoadPoint, Observation, Policy

NOW = 1_800_000_000.0

policies = st.builds(
    lambda low, span, tpw, cooldown: Policy(
        min_workers=low,
        max_workers=max(1, low + span),
        tasks_per_worker=tpw,
        cooldown_seconds=cooldown,
    ),
    st.integers(0, 5),
    st.integers(0, 30),
    st.sampled_from([3, 5, 10, 20, 40, 80]),
    st.sampled_from([0.0, 60.0, 300.0, 900.0]),
)
counts = st.integers(0, 2000)
currents = st.integers(0, 50)
points = st.builds(
    lambda age, length, peak: LoadPoint(NOW - age, NOW - age + length, peak),
    st.floats(0, 1200),
    st.floats(0, 60),
    counts,
)
histories = st.lists(points, max_size=40)


def full_history(peak: int, policy: Policy, step: float = 5.0) -> list[LoadPoint]:
    """Samples every `step` seconds over the whole cool-down window, all at `peak`."""
    n = int(policy.cooldown_seconds // step) + 2
    return [LoadPoint(NOW - i * step, NOW - i * step, peak) for i in range(1, n)]


def obs(queued: int | None, running: int | None, current: int | None) -> Observation:
    return Observation(queued=queued, running=running, desired_workers=current)


# --- properties ------------------------------------------------------------------------


@given(policies, counts, counts, currents, st.one_of(st.none(), histories))
def test_decide_stays_within_min_and_max(policy, queued, running, current, history):
    decision = core.decide(policy, obs(queued, running, current), NOW, history)
    assert policy.min_workers <= decision.desired <= policy.max_workers


@given(policies, counts, counts, currents)
def test_decide_result_is_within_bounds_when_history_is_complete(policy, queued, running, current):
    history = full_history(0, policy)
    decision = core.decide(policy, obs(queued, running, current), NOW, history)
    assert policy.min_workers <= decision.desired <= policy.max_workers


@given(policies, counts, counts, counts, currents, st.one_of(st.none(), histories))
def test_decide_is_monotone_in_load(policy, low, extra, running, current, history):
    smaller = core.decide(policy, obs(low, running, current), NOW, history)
    larger = core.decide(policy, obs(low + extra, running, current), NOW, history)
    assert smaller.desired <= larger.desired


@given(policies, counts, counts, currents, histories)
def test_decide_never_goes_below_what_the_cooldown_window_needed(
    policy, queued, running, current, history
):
    decision = core.decide(policy, obs(queued, running, current), NOW, history)
    window_start = NOW - policy.cooldown_seconds
    for point in history:
        if point.end >= window_start and point.start <= NOW:
            needed = core.workers_for(point.peak, policy)
            assert decision.desired >= min(current, policy.max_workers, needed)


@given(policies, st.integers(1, 2000), currents, st.floats(0, 1.0))
def test_decide_holds_until_demand_has_been_low_for_the_whole_cooldown(
    policy, high, current, fraction
):
    # Demand was `high` until `drop_age` seconds ago, 0 since; samples every 5 s.
    drop_age = fraction * policy.cooldown_seconds
    history = [
        LoadPoint(NOW - age, NOW - age, 0 if age < drop_age else high)
        for age in range(5, int(policy.cooldown_seconds) + 65, 5)
    ]
    decision = core.decide(policy, obs(0, 0, current), NOW, history)
    if drop_age < policy.cooldown_seconds - 5:
        assert decision.desired >= min(current, policy.max_workers, core.workers_for(high, policy))


@given(
    policies,
    st.one_of(st.none(), counts),
    st.one_of(st.none(), counts),
    st.one_of(st.none(), currents),
    st.one_of(st.none(), histories),
)
def test_decide_holds_on_missing_input(policy, queued, running, current, history):
    assume(None in (queued, running, current))
    decision = core.decide(policy, obs(queued, running, current), NOW, history)
    assert decision.action is Action.HOLD
    assert decision.desired == current
    assert not decision.changes


@given(policies, counts, counts, currents)
def test_decide_never_scales_in_without_history(policy, queued, running, current):
    decision = core.decide(policy, obs(queued, running, current), NOW, None)
    assert decision.desired >= min(current, policy.max_workers)


@given(policies, counts, counts, currents, histories)
def test_decide_scales_out_at_once_to_the_target(policy, queued, running, current, history):
    decision = core.decide(policy, obs(queued, running, current), NOW, history)
    target = core.workers_for(queued + running, policy)
    if target > current:
        assert decision.action is Action.SCALE_OUT
        assert decision.desired == target


@settings(max_examples=50)
@given(policies, histories, st.floats(1, 200))
def test_decide_never_scales_in_across_a_hole_in_history(policy, history, hole):
    # Drop every point in a stretch longer than max_gap inside the window: no scale-in.
    assume(policy.cooldown_seconds >= policy.max_gap_seconds + hole)
    hole_end = NOW - 1
    hole_start = hole_end - policy.max_gap_seconds - hole
    kept = [p for p in history if p.end < hole_start or p.start > hole_end]
    decision = core.decide(policy, obs(0, 0, 7), NOW, kept)
    assert decision.desired >= min(7, policy.max_workers)


# --- examples --------------------------------------------------------------------------

SMALL = Policy(min_workers=1, max_workers=10, tasks_per_worker=5, cooldown_seconds=300)


@pytest.mark.parametrize(
    ("demand", "expected"),
    [(0, 1), (1, 1), (5, 1), (6, 2), (10, 2), (11, 3), (49, 10), (50, 10), (51, 10), (500, 10)],
)
def test_workers_for_is_ceil_of_demand_over_tasks_per_worker_clamped(demand, expected):
    assert core.workers_for(demand, SMALL) == expected


def test_workers_for_allows_zero_workers_when_min_is_zero():
    policy = Policy(min_workers=0, max_workers=3, tasks_per_worker=5)
    assert core.workers_for(0, policy) == 0
    assert core.workers_for(1, policy) == 1


def test_decide_scales_out_on_queued_tasks():
    decision = core.decide(SMALL, obs(12, 0, 1), NOW, None)
    assert (decision.action, decision.desired, decision.changes) == (Action.SCALE_OUT, 3, True)


def test_decide_counts_running_tasks_as_demand():
    decision = core.decide(SMALL, obs(0, 11, 2), NOW, None)
    assert decision.desired == 3


def test_decide_holds_when_demand_fits():
    decision = core.decide(SMALL, obs(3, 6, 2), NOW, None)
    assert decision.action is Action.HOLD
    assert not decision.changes


def test_decide_scales_in_after_a_quiet_cooldown():
    decision = core.decide(SMALL, obs(0, 3, 4), NOW, full_history(3, SMALL))
    assert (decision.action, decision.desired) == (Action.SCALE_IN, 1)


def test_decide_scales_in_only_to_the_peak_of_the_window():
    history = [*full_history(0, SMALL), LoadPoint(NOW - 200, NOW - 140, 14)]
    decision = core.decide(SMALL, obs(0, 0, 6), NOW, history)
    assert (decision.action, decision.desired) == (Action.SCALE_IN, 3)


def test_decide_ignores_demand_older_than_the_cooldown():
    history = [*full_history(0, SMALL), LoadPoint(NOW - 400, NOW - 340, 50)]
    decision = core.decide(SMALL, obs(0, 0, 6), NOW, history)
    assert decision.desired == 1


def test_decide_holds_when_history_does_not_reach_back_a_whole_cooldown():
    recent = [LoadPoint(NOW - age, NOW - age, 0) for age in range(5, 150, 5)]
    decision = core.decide(SMALL, obs(0, 0, 6), NOW, recent)
    assert decision.action is Action.HOLD
    assert "hole" in decision.reason


def test_decide_holds_on_unavailable_history():
    decision = core.decide(SMALL, obs(0, 0, 6), NOW, None)
    assert decision.action is Action.HOLD
    assert "missing data" in decision.reason


def test_decide_names_the_missing_inputs():
    decision = core.decide(SMALL, obs(None, 3, None), NOW, None)
    assert decision.reason == "missing input queued, desired_workers: holding"


def test_decide_raises_to_min_workers():
    decision = core.decide(SMALL, obs(0, 0, 0), NOW, None)
    assert (decision.action, decision.desired) == (Action.SCALE_OUT, 1)


def test_decide_clamps_a_count_above_max_at_once():
    decision = core.decide(SMALL, obs(0, 0, 14), NOW, None)
    assert (decision.action, decision.desired) == (Action.SCALE_IN, 10)


def test_decide_scales_to_zero_when_min_is_zero():
    policy = Policy(min_workers=0, max_workers=5, tasks_per_worker=5, cooldown_seconds=300)
    decision = core.decide(policy, obs(0, 0, 2), NOW, full_history(0, policy))
    assert (decision.action, decision.desired) == (Action.SCALE_IN, 0)


def test_decide_with_zero_cooldown_scales_in_on_the_current_sample():
    policy = Policy(min_workers=1, max_workers=5, tasks_per_worker=5, cooldown_seconds=0)
    decision = core.decide(policy, obs(0, 0, 4), NOW, [])
    assert decision.desired == 1


def test_wants_scale_in_only_when_demand_is_below_the_count():
    assert core.wants_scale_in(SMALL, obs(0, 0, 3))
    assert not core.wants_scale_in(SMALL, obs(15, 0, 3))
    assert not core.wants_scale_in(SMALL, obs(None, 0, 3))


def test_covers_accepts_gaps_up_to_max_gap_and_rejects_longer_ones():
    pts = [LoadPoint(0, 60, 1), LoadPoint(100, 160, 1), LoadPoint(200, 200, 1)]
    assert core.covers(pts, 0, 200, max_gap=40)
    assert not core.covers(pts, 0, 200, max_gap=39)
    assert not core.covers([], 0, 200, max_gap=1000)


def test_covers_needs_the_history_to_reach_back_to_the_window_start():
    pts = [LoadPoint(10, 60, 1), LoadPoint(60, 200, 1)]
    assert core.covers(pts, 10, 200, max_gap=40)
    assert not core.covers(pts, 9, 200, max_gap=40)


def test_policy_lists_every_problem():
    with pytest.raises(ValueError, match="min_workers=5 > max_workers=2") as raised:
        Policy(min_workers=5, max_workers=2, tasks_per_worker=0, cooldown_seconds=-1)
    message = str(raised.value)
    assert "tasks_per_worker=0: must be >= 1" in message
    assert "cooldown_seconds=-1: must be >= 0" in message


# --- issue 9: samples are points; holes are measured from the last observation ----------


def test_covers_accepts_point_samples_that_straddle_the_window_start():
    samples = [LoadPoint(t, t, 0) for t in range(-3, 201, 5)]  # every 5 s, none at 0
    assert core.covers(samples, 0, 200, max_gap=10)


def test_covers_counts_a_hole_that_straddles_the_window_start_in_full():
    samples = [LoadPoint(-100, -100, 0), *(LoadPoint(t, t, 0) for t in range(20, 201, 5))]
    assert not core.covers(samples, 0, 200, max_gap=30)


def test_one_low_sample_after_a_hole_never_scales_in():
    policy = Policy(
        min_workers=1, max_workers=10, tasks_per_worker=5, cooldown_seconds=300, max_gap_seconds=30
    )
    # Low for 10 minutes, then nothing for 75 s (a lost invocation), then one low sample.
    history = [LoadPoint(NOW - age, NOW - age, 0) for age in range(80, 600, 5)]
    decision = core.decide(policy, obs(0, 0, 6), NOW, history)
    assert decision.action is Action.HOLD
    assert "hole" in decision.reason


def test_max_gap_tolerates_the_pause_between_invocations_but_not_a_lost_one():
    gap = core.max_gap_for(sample_interval=5, budget=50)
    assert gap >= 60 - 45  # last sample at 45 s, next invocation at 60 s
    assert gap < 60 + 60 - 45  # one invocation lost
    assert core.max_gap_for(sample_interval=5, budget=0) < 120  # one sample a minute


def test_memory_store_lease_is_exclusive_until_it_expires_or_is_released():
    store = core.MemoryStore()
    assert store.acquire_lease("a", now=0, until=60)
    assert not store.acquire_lease("b", now=30, until=90)
    assert store.acquire_lease("b", now=61, until=120)
    store.release_lease("a")  # not the holder any more: no effect
    assert not store.acquire_lease("c", now=62, until=122)
    store.release_lease("b")
    assert store.acquire_lease("c", now=62, until=122)


def test_memory_store_reads_back_the_samples_of_a_window():
    store = core.MemoryStore()
    for t in (0, 5, 10, 15):
        store.record_sample(t, t)
    assert store.read_history(5, 10) == [LoadPoint(5, 5, 5), LoadPoint(10, 10, 10)]
