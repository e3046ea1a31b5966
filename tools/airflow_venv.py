"""The cached Apache Airflow venvs the end-to-end test and the worker-start benchmark run: one
per version pinned under tests/e2e/airflow/."""

from __future__ import annotations

import subprocess
from pathlib import Path

from openmwaa.versions import DEFAULT_AIRFLOW_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
PINNED_VERSIONS_DIR = REPO_ROOT / "tests" / "e2e" / "airflow"


def pinned_versions() -> list[str]:
    """The Airflow versions with pinned requirements for the end-to-end test."""
    return sorted(p.name for p in PINNED_VERSIONS_DIR.iterdir() if p.is_dir())


def constraints_file(version: str = DEFAULT_AIRFLOW_VERSION) -> Path:
    """The frozen lock of ``version``'s venv (what stands in for Airflow's constraints)."""
    return PINNED_VERSIONS_DIR / version / "constraints.txt"


def airflow_venv(version: str = DEFAULT_AIRFLOW_VERSION) -> Path:
    """The venv of ``version``; tools/airflow_venv.sh builds it on first use (a few minutes)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "airflow_venv.sh"), version],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])
