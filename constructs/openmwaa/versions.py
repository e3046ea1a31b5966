"""Airflow versions this library configures and proves."""

from __future__ import annotations

DEFAULT_AIRFLOW_VERSION = "3.3.2"
"""The version the bundled app and the end-to-end test run."""

SUPPORTED_AIRFLOW_VERSIONS: tuple[str, ...] = ("2.11.2", "3.2.2", "3.3.2")
"""Exactly the versions the end-to-end test boots (tests/e2e/version_matrix.py; a unit test
keeps the two equal): 3.3.2 on mw1.small and mw1.micro, 2.11.2 on mw1.small, 3.2.2 upgraded
in place to 3.3.2. A version no test starts is not offered."""

DEFAULT_PYTHON_VERSION = "3.12"


def is_airflow_2(version: str) -> bool:
    """True for the Airflow 2 line (web server instead of api-server, no Task Execution API)."""
    return version.startswith("2.")


def default_image_name(version: str, python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """The stock Apache Airflow image for `version` on Docker Hub."""
    return f"apache/airflow:{version}-python{python_version}"
