"""The supported Airflow versions are exactly the ones the end-to-end test boots."""

from __future__ import annotations

import re

from openmwaa.versions import DEFAULT_AIRFLOW_VERSION, SUPPORTED_AIRFLOW_VERSIONS
from tests.e2e.version_matrix import (
    SHARED_ENVIRONMENT,
    UPGRADE,
    VERSION_ENVIRONMENTS,
    booted_versions,
)
from tools.airflow_venv import PINNED_VERSIONS_DIR, pinned_versions


def test_every_supported_version_is_booted_and_nothing_else() -> None:
    assert set(SUPPORTED_AIRFLOW_VERSIONS) == booted_versions()


def test_every_booted_version_has_pinned_requirements_and_no_stale_pins() -> None:
    assert set(pinned_versions()) == booted_versions()
    for version in pinned_versions():
        requirements = (PINNED_VERSIONS_DIR / version / "requirements.txt").read_text()
        constraints = (PINNED_VERSIONS_DIR / version / "constraints.txt").read_text()
        pin = re.escape(version)
        assert re.search(rf"^apache-airflow(\[[a-z0-9,.-]+\])?=={pin}$", requirements, re.M)
        assert f"apache-airflow=={version}\n" in constraints


def test_the_default_runs_in_the_shared_environment_and_micro_and_2_11_boot() -> None:
    assert SHARED_ENVIRONMENT == (DEFAULT_AIRFLOW_VERSION, "mw1.small")
    assert (DEFAULT_AIRFLOW_VERSION, "mw1.micro") in VERSION_ENVIRONMENTS
    assert any(version.startswith("2.") for version, _ in VERSION_ENVIRONMENTS)
    assert UPGRADE[1] == DEFAULT_AIRFLOW_VERSION
    old, new = (tuple(int(p) for p in v.split(".")) for v in UPGRADE)
    assert old[:1] == new[:1] and old < new, "an in-place upgrade stays within one major line"
