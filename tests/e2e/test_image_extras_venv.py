"""End to end: each pinned Airflow venv has what the stock image's default extras install.

Builds (or reuses) the cached venv of every version pinned under tests/e2e/airflow/ with
tools/airflow_venv.sh, and reads its installed distributions with the venv's own Python; Airflow
is not started. Every distribution tests/e2e/airflow/image_extras.json maps an installable extra
to must be installed, and the record's mapping must still be what the installed apache-airflow
wheel's metadata says each extra installs.
"""

from __future__ import annotations

import pytest

from tools.airflow_venv import airflow_venv, pinned_versions

from .image_extras import extra_distributions, load_record, venv_metadata

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


@pytest.mark.parametrize("version", pinned_versions())
def test_the_venv_has_every_distribution_of_the_image_extras(version: str) -> None:
    entry = load_record()[version]
    installed = venv_metadata(airflow_venv(version))

    missing = {
        extra: sorted(set(dists) - set(installed.versions))
        for extra, dists in entry.expected_distributions().items()
        if set(dists) - set(installed.versions)
    }
    assert not missing, f"Airflow {version}'s venv lacks (extra: distributions) {missing}"

    drift = {
        extra: {"recorded": sorted(dists), "wheel": sorted(from_wheel)}
        for extra, dists in entry.expected_distributions().items()
        if (from_wheel := extra_distributions(extra, installed.requires, installed.environment))
        != set(dists)
    }
    assert not drift, f"image_extras.json's distributions differ from the wheel: {drift}"
