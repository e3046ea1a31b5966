"""MWAA environment classes and what each one becomes on Fargate and Aurora.

The vCPU and memory figures are MWAA's published ones, except mw1.small's control plane,
which is sized from what its components were measured to need (:data:`MEASURED_MW1_SMALL`,
``benchmarks/measure_components.py``). Every pair is a valid Fargate task size, so no rounding
happens. Without a measured size the dag-processor gets the scheduler's size (on MWAA it runs
inside the scheduler) and the triggerer the web server's size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


class EnvironmentClass(StrEnum):
    """The MWAA environment class: sizes every component and the metadata database."""

    MW1_MICRO = "mw1.micro"
    MW1_SMALL = "mw1.small"
    MW1_MEDIUM = "mw1.medium"
    MW1_LARGE = "mw1.large"
    MW1_XLARGE = "mw1.xlarge"
    MW1_2XLARGE = "mw1.2xlarge"


@dataclass(frozen=True)
class TaskSize:
    """A Fargate task size: `cpu` in CPU units (1024 = 1 vCPU), `memory_mib` in MiB."""

    cpu: int
    memory_mib: int


@dataclass(frozen=True)
class EnvironmentClassSpec:
    """Everything an environment class decides.

    `all_in_one` classes run every component in one task, as MWAA does for mw1.micro.
    """

    name: EnvironmentClass
    scheduler: TaskSize
    worker: TaskSize
    webserver: TaskSize
    tasks_per_worker: int
    default_schedulers: int
    max_schedulers: int
    default_min_webservers: int
    default_max_webservers: int
    max_webservers: int
    default_max_workers: int
    max_workers: int
    db_min_acu: float
    db_max_acu: float
    all_in_one: bool = False
    dag_processor_size: TaskSize | None = None
    """The dag-processor's own size; None: the scheduler's."""
    triggerer_size: TaskSize | None = None
    """The triggerer's own size; None: the web server's."""

    @property
    def dag_processor(self) -> TaskSize:
        return self.dag_processor_size or self.scheduler

    @property
    def triggerer(self) -> TaskSize:
        return self.triggerer_size or self.webserver

    @property
    def execution_api(self) -> TaskSize:
        """The Task Execution API server (Airflow 3): the web server's size."""
        return self.webserver


def _size(vcpu: float, memory_gb: float) -> TaskSize:
    return TaskSize(cpu=int(vcpu * 1024), memory_mib=int(memory_gb * 1024))


@dataclass(frozen=True)
class Measured:
    """What one copy of a component needed on mw1.small's e2e load: the peak proportional
    set size of its process tree (MiB) and its 95th-percentile CPU (vCPU)."""

    peak_pss_mib: float
    p95_vcpu: float


MEASURED_MW1_SMALL: dict[str, Measured] = {  # by the spec's attribute of each size
    "scheduler": Measured(217, 0.245),
    "dag_processor": Measured(432, 0.367),
    "triggerer": Measured(499, 0.056),
    "webserver": Measured(286, 0.148),
    "execution_api": Measured(262, 0.088),
    "worker": Measured(816, 0.264),
}
"""``benchmarks/measure_components.py`` on 2026-12-01: Airflow 3.3.2 from PyPI, 30 DAGs of 140
task instances (20 deferrable) triggered at once with a UI client at 4 requests a second, idle
and load phases sampled every 5 s from /proc. A size fits when its memory is at least
:data:`MEMORY_HEADROOM` x the peak PSS and its vCPU at least :data:`CPU_HEADROOM` x the p95
(0.25 at least). mw1.small's scheduler and triggerer are sized by this rule; its dag-processor
(parses in bursts), api-server, execution-api (its load grows with every running task's
heartbeats, and the run had one worker) and worker keep MWAA's figures, which also fit."""
MEMORY_HEADROOM = 1.5
CPU_HEADROOM = 2.0


def _standard(
    name: EnvironmentClass,
    scheduler: tuple[float, int],
    worker: tuple[float, int],
    webserver: tuple[float, int],
    tasks_per_worker: int,
    db_acu: tuple[float, float],
) -> EnvironmentClassSpec:
    """A class above mw1.micro: (vCPU, GB) per component, and MWAA's common counts."""
    return EnvironmentClassSpec(
        name=name,
        scheduler=_size(*scheduler),
        worker=_size(*worker),
        webserver=_size(*webserver),
        tasks_per_worker=tasks_per_worker,
        default_schedulers=2,
        max_schedulers=5,
        default_min_webservers=2,
        default_max_webservers=2,
        max_webservers=5,
        default_max_workers=10,
        max_workers=200,
        db_min_acu=db_acu[0],
        db_max_acu=db_acu[1],
    )


ENVIRONMENT_CLASSES: dict[EnvironmentClass, EnvironmentClassSpec] = {
    EnvironmentClass.MW1_MICRO: EnvironmentClassSpec(
        name=EnvironmentClass.MW1_MICRO,
        scheduler=_size(1, 3),
        worker=_size(1, 3),
        webserver=_size(1, 3),
        tasks_per_worker=3,
        default_schedulers=1,
        max_schedulers=1,
        default_min_webservers=1,
        default_max_webservers=1,
        max_webservers=1,
        default_max_workers=1,
        max_workers=1,
        db_min_acu=0.5,
        db_max_acu=1,
        all_in_one=True,
    ),
    **{
        spec.name: spec
        for spec in (
            dataclasses.replace(
                _standard(EnvironmentClass.MW1_SMALL, (0.5, 1), (1, 2), (0.5, 1), 5, (0.5, 2)),
                dag_processor_size=_size(1, 2),
                triggerer_size=_size(0.25, 1),
            ),
            _standard(EnvironmentClass.MW1_MEDIUM, (2, 4), (2, 4), (1, 2), 10, (0.5, 4)),
            _standard(EnvironmentClass.MW1_LARGE, (4, 8), (4, 8), (2, 4), 20, (1, 8)),
            _standard(EnvironmentClass.MW1_XLARGE, (8, 24), (8, 24), (4, 12), 40, (2, 16)),
            _standard(EnvironmentClass.MW1_2XLARGE, (16, 48), (16, 48), (8, 24), 80, (4, 32)),
        )
    },
}

# Valid Fargate (cpu -> allowed memory in MiB) combinations, from the ECS task size table.
FARGATE_TASK_SIZES: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 16385, 1024)),
    4096: frozenset(range(8192, 30721, 1024)),
    8192: frozenset(range(16384, 61441, 4096)),
    16384: frozenset(range(32768, 122881, 8192)),
}


def is_valid_fargate_size(size: TaskSize) -> bool:
    """True when `size` is a cpu/memory pair Fargate accepts."""
    return size.memory_mib in FARGATE_TASK_SIZES.get(size.cpu, frozenset())


def spec_for(environment_class: EnvironmentClass | str) -> EnvironmentClassSpec:
    """The spec of a class given as the enum or its MWAA name (`"mw1.small"`)."""
    return ENVIRONMENT_CLASSES[EnvironmentClass(environment_class)]
