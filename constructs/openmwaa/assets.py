"""Where the code this library ships (the bundled Lambdas) lives, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def lambda_code_dir() -> Path:
    """The folder holding every bundled Lambda (`dag_sync/`, `autoscaler/`, ...).

    In an installed wheel it is `openmwaa/_lambdas`; in a source checkout (editable
    install) it is the repository's `lambdas/` folder. Never resolved from the current
    directory, so consumer apps find it wherever they run.
    """
    for candidate in (_PACKAGE_DIR / "_lambdas", _PACKAGE_DIR.parent.parent / "lambdas"):
        if (candidate / "dag_sync").is_dir():
            return candidate
    raise FileNotFoundError(
        f"openmwaa's Lambda code is missing: looked in {_PACKAGE_DIR / '_lambdas'} and "
        f"{_PACKAGE_DIR.parent.parent / 'lambdas'}; reinstall the openmwaa package"
    )
