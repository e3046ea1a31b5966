"""The `cdk.App` that `cdk synth` builds, for the tests and `make example`.

The CDK CLI runs app.py with the context of cdk.json plus a few keys of its own (path and
asset metadata, version reporting). Building test apps the same way means the tests see the
template that ships, feature flags included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

REPO_ROOT = Path(__file__).resolve().parent.parent

CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
}
"""What the CDK CLI adds to cdk.json's context when it runs the app."""


def project_context() -> dict[str, Any]:
    """cdk.json's context (the feature flags) plus what the CLI adds."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return {**context, **CLI_CONTEXT}


def project_app(**kwargs: Any) -> cdk.App:
    """A `cdk.App` configured as `cdk synth` configures the bundled app's."""
    return cdk.App(context=project_context(), analytics_reporting=True, **kwargs)
