"""Which Airflow versions and environment classes the end-to-end test boots.

The supported list (``openmwaa.versions.SUPPORTED_AIRFLOW_VERSIONS``) must be exactly the set
booted here: ``tests/unit/test_versions.py`` fails otherwise, so a version no test boots
cannot stay on the list.
"""

from __future__ import annotations

from openmwaa.versions import DEFAULT_AIRFLOW_VERSION

SHARED_ENVIRONMENT = (DEFAULT_AIRFLOW_VERSION, "mw1.small")
"""The environment every other end-to-end module runs against (app.py's template)."""

VERSION_ENVIRONMENTS = (("2.11.2", "mw1.small"), (DEFAULT_AIRFLOW_VERSION, "mw1.micro"))
"""Booted by test_versions_e2e.py, one at a time."""

UPGRADE = ("3.2.2", DEFAULT_AIRFLOW_VERSION)
"""test_upgrade_e2e.py boots the first and redeploys it as the second, in place."""


def booted_versions() -> set[str]:
    """Every Airflow version some end-to-end test starts."""
    return {SHARED_ENVIRONMENT[0], *(v for v, _ in VERSION_ENVIRONMENTS), *UPGRADE}
