"""The autoscaling simulator (benchmarks/simulate_autoscaling.py): one short trace per policy.

Each run drives the policy on the simulated ECS service; "ours" goes through the real
``autoscaler.loop.run_invocation`` loop. These check invariants that a broken simulator
(or a broken autoscaler) would violate.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _simulator() -> ModuleType:
    path = ROOT / "benchmarks" / "simulate_autoscaling.py"
    spec = importlib.util.spec_from_file_location("simulate_autoscaling", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate_autoscaling"] = module
    spec.loader.exec_module(module)
    return module


sim = _simulator()
TRACE = "short burst"  # 40 tasks of 1-4 min arriving at 5 min, 30 min horizon
SEED = 3


@pytest.fixture(scope="module", params=sim.POLICIES)
def result(request: pytest.FixtureRequest) -> Any:
    return sim.simulate(TRACE, request.param, SEED)


def test_simulator_loses_no_task(result: Any) -> None:
    assert result.finished + result.killed + result.unfinished == result.tasks
    assert result.unfinished == 0, f"{result.policy}: {result.unfinished} tasks never finished"


def test_simulator_bills_worker_hours(result: Any) -> None:
    assert result.worker_hours > 0
    assert result.dollars("spot") < result.dollars("arm64") < result.dollars("x86")


def test_simulator_protected_policies_kill_no_task_without_interruptions(result: Any) -> None:
    assert result.policy in sim.PROTECTED
    assert result.killed == 0


def test_simulator_ours_scales_out_on_a_backlog() -> None:
    for policy in ("ours", "ours, min 0"):
        r = sim.simulate(TRACE, policy, SEED)
        needed = math.ceil(r.tasks / sim.TASKS_PER_WORKER)
        assert r.peak_workers >= needed, f"{policy}: peak {r.peak_workers} < {needed}"
        assert r.p95_wait < 300, f"{policy}: p95 wait {r.p95_wait:.0f}s"


def test_simulator_ours_runs_the_real_invocation_loop() -> None:
    r = sim.simulate(TRACE, "ours", SEED)
    # one EventBridge run a minute over 30 minutes, minus the rare lost one
    assert 27 <= r.ours_runs <= 31


def test_simulator_counts_tasks_killed_by_spot_interruptions() -> None:
    timing = sim.Timing(spot_interruptions_per_hour=6.0)
    killed = sum(sim.simulate(TRACE, "ours", seed, timing).killed for seed in range(1, 6))
    assert killed > 0
