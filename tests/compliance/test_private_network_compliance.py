"""cdk-nag (AwsSolutions, HIPAA, NIST) and cfn-lint over the private-network variants: a new
private VPC, with a customer managed key and ECS Exec, and your own VPC whose endpoints are
verified or created."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from cfnlint.api import ManualArgs, lint

from openmwaa import AirflowEnvironment
from tests.compliance.nag import nag_findings
from tests.stacks import TEST_ENV, isolated_vpc
from tools.cdk_app import project_app


def _variant(name: str, **props: Any) -> Callable[[cdk.App], cdk.Stack]:
    def build(app: cdk.App) -> cdk.Stack:
        stack = cdk.Stack(app, name, env=TEST_ENV)
        if props.pop("with_key", False):
            props["kms_key"] = kms.Key(stack, "Key", enable_key_rotation=True)
        if props.pop("with_vpc", False):
            props["vpc"] = isolated_vpc(stack)
        AirflowEnvironment(stack, "Airflow", private_network=True, **props)
        return stack

    return build


VARIANTS: dict[str, Callable[[], Callable[[cdk.App], cdk.Stack]]] = {
    "new-vpc": lambda: _variant("PrivateNew"),
    "new-vpc-kms-exec": lambda: _variant(
        "PrivateKmsExec", with_key=True, enable_execute_command=True
    ),
    "own-vpc-verify": lambda: _variant("PrivateOwnVerify", with_vpc=True),
    "own-vpc-create": lambda: _variant("PrivateOwnCreate", with_vpc=True, vpc_endpoints="create"),
}
"""Fresh builders per test: `_variant` pops its flags from the props it closes over."""


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cdk_nag_private_variant_has_no_unacknowledged_finding(name: str) -> None:
    assert nag_findings(VARIANTS[name]()) == []


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_private_variant_finds_no_error(name: str) -> None:
    app = project_app()
    stack = VARIANTS[name]()(app)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    matches = lint(json.dumps(template), config=ManualArgs(regions=["eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} {m.path}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
