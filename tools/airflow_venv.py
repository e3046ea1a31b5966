"""The cached Apache Airflow venv the end-to-end test and the worker-start benchmark run."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def airflow_venv() -> Path:
    """The venv's directory; tools/airflow_venv.sh builds it on first use (a few minutes)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "airflow_venv.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])
