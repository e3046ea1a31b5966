from __future__ import annotations

import pytest

from openmwaa import EnvironmentClass
from openmwaa.environment_class import (
    CPU_HEADROOM,
    ENVIRONMENT_CLASSES,
    MEASURED_MW1_SMALL,
    MEMORY_HEADROOM,
    TaskSize,
    is_valid_fargate_size,
    spec_for,
)

# MWAA's published worker sizes (vCPU, GB) and tasks per worker.
MWAA_WORKERS = {
    "mw1.micro": (1, 3, 3),
    "mw1.small": (1, 2, 5),
    "mw1.medium": (2, 4, 10),
    "mw1.large": (4, 8, 20),
    "mw1.xlarge": (8, 24, 40),
    "mw1.2xlarge": (16, 48, 80),
}


@pytest.mark.parametrize("name", list(MWAA_WORKERS))
def test_environment_class_worker_matches_mwaa(name: str) -> None:
    vcpu, gb, tasks = MWAA_WORKERS[name]
    spec = spec_for(name)
    assert spec.worker == TaskSize(cpu=vcpu * 1024, memory_mib=gb * 1024)
    assert spec.tasks_per_worker == tasks


@pytest.mark.parametrize("environment_class", list(EnvironmentClass))
def test_environment_class_every_component_is_a_valid_fargate_size(
    environment_class: EnvironmentClass,
) -> None:
    spec = ENVIRONMENT_CLASSES[environment_class]
    for size in (spec.scheduler, spec.worker, spec.webserver, spec.dag_processor, spec.triggerer):
        assert is_valid_fargate_size(size), (environment_class, size)


def test_fargate_size_check_rejects_an_invalid_pair() -> None:
    assert not is_valid_fargate_size(TaskSize(cpu=1024, memory_mib=1024))
    assert not is_valid_fargate_size(TaskSize(cpu=8192, memory_mib=18432))


def test_environment_class_micro_runs_in_one_task_with_one_of_each() -> None:
    spec = spec_for(EnvironmentClass.MW1_MICRO)
    assert spec.all_in_one
    assert (spec.default_schedulers, spec.max_workers, spec.max_webservers) == (1, 1, 1)


def test_environment_class_database_capacity_grows_with_class() -> None:
    maxima = [ENVIRONMENT_CLASSES[c].db_max_acu for c in EnvironmentClass]
    assert maxima == sorted(maxima)
    assert len(set(maxima)) == len(maxima)


def test_environment_class_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match=r"'mw2\.huge' is not a valid EnvironmentClass"):
        spec_for("mw2.huge")


def test_mw1_small_every_component_fits_what_it_was_measured_to_need() -> None:
    spec = spec_for(EnvironmentClass.MW1_SMALL)
    sizes = {name: getattr(spec, name) for name in MEASURED_MW1_SMALL}
    assert set(sizes) == {
        "scheduler",
        "dag_processor",
        "triggerer",
        "webserver",
        "execution_api",
        "worker",
    }
    for component, measured in MEASURED_MW1_SMALL.items():
        size = sizes[component]
        assert size.memory_mib >= MEMORY_HEADROOM * measured.peak_pss_mib, component
        assert size.cpu / 1024 >= max(0.25, CPU_HEADROOM * measured.p95_vcpu), component


def test_mw1_small_control_plane_is_smaller_than_mwaas_published_scheduler() -> None:
    """MWAA gives mw1.small's scheduler 1 vCPU and 2 GB; the measurement asks for half."""
    spec = spec_for(EnvironmentClass.MW1_SMALL)
    assert spec.scheduler == TaskSize(cpu=512, memory_mib=1024)
    assert spec.triggerer == TaskSize(cpu=256, memory_mib=1024)
    assert spec.dag_processor == TaskSize(cpu=1024, memory_mib=2048)
