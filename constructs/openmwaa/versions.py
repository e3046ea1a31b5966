"""Airflow versions this library configures and proves."""

from __future__ import annotations

DEFAULT_AIRFLOW_VERSION = "3.3.2"
"""The version the bundled app and the end-to-end test run."""

SUPPORTED_AIRFLOW_VERSIONS: tuple[str, ...] = ("2.11.2", "3.1.8", "3.2.2", "3.3.1", "3.3.2")

DEFAULT_PYTHON_VERSION = "3.12"


def is_airflow_2(version: str) -> bool:
    """True for the Airflow 2 line (web server instead of api-server, no Task Execution API)."""
    return version.startswith("2.")


def default_image_name(version: str, python_version: str = DEFAULT_PYTHON_VERSION) -> str:
    """The stock Apache Airflow image for `version` on Docker Hub."""
    return f"apache/airflow:{version}-python{python_version}"
