"""docs/security.md lists every rule the library acknowledges."""

from __future__ import annotations

import re

import aws_cdk as cdk

from tests.conftest import REPO_ROOT
from tests.stacks import bundled_stack, kms_imported_vpc_stack
from tools.cdk_app import project_app

NAG_RULE = re.compile(
    r"^(?:AwsSolutions|HIPAA\.Security|NIST\.800\.53\.R5)::[^-]+(?:-[^-]+)*?-([A-Za-z0-9]+)"
)


def _acknowledged_rules(env) -> set[str]:  # type: ignore[no-untyped-def]
    rules = set()
    for construct in env.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule in entry.data:
                    match = NAG_RULE.match(rule)
                    if match:
                        rules.add(match.group(1))
    return rules


def test_security_doc_lists_every_acknowledged_rule() -> None:
    doc = (REPO_ROOT / "docs" / "security.md").read_text()
    env = bundled_stack(project_app()).airflow  # type: ignore[attr-defined]
    _, kms_env = kms_imported_vpc_stack()
    rules = _acknowledged_rules(env) | _acknowledged_rules(kms_env)
    assert rules
    missing = sorted(r for r in rules if r not in doc)
    assert missing == []
