"""Run cdk-nag 3 packs over an app and return the unacknowledged findings."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from tools.cdk_app import project_app


def nag_findings(build: type[object] | object, *, outdir: str | None = None) -> list[str]:
    """Synthesize the app made by `build(app)` under three cdk-nag packs.

    Returns one line per unacknowledged finding: "<rule> <construct path>".
    """
    out = outdir or tempfile.mkdtemp(prefix="nag-")
    app = project_app(outdir=out)
    build(app)  # type: ignore[operator]
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), HIPAASecurityChecks(app), NIST80053R5Checks(app)
    )
    try:
        app.synth()
    except RuntimeError as error:
        if "validation-report.json" not in str(error):
            raise
    report = Path(out) / "validation-report.json"
    if not report.exists():
        return []
    data = json.loads(report.read_text())
    return sorted(
        f"{violation['ruleName']} {construct['constructPath']}"
        for plugin in data["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    )
