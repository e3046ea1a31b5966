from __future__ import annotations

import pytest

from openmwaa import EnvironmentClass
from openmwaa.environment_class import (
    ENVIRONMENT_CLASSES,
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
