"""The execution role lets Airflow's CloudWatch task handler start, as AWS authorizes it.

Airflow's remote logging (the amazon provider's CloudWatch handler, through watchtower) looks
its log group up with ``logs:DescribeLogGroups`` and, if that fails, creates it with
``logs:CreateLogGroup``; an AccessDenied on the second is not caught, so the triggerer, the
dag-processor and every task would fail. AWS authorizes DescribeLogGroups only against
``arn:aws:logs:<region>:<account>:log-group::log-stream:`` (every group of the account), which
a policy naming single log groups never matches. These checks evaluate the synthesized policy
with tests/e2e/iam.py, the same evaluator the end-to-end test's moto server uses.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import iam
from tests.e2e.principals import placeholder_resolver, role_policies

REGION, ACCOUNT = "us-east-1", "123456789012"
TASK_GROUP = "airflow-openmwaa-Task"


def _execution_role_documents(template: Any) -> list[dict[str, Any]]:
    as_json = template.to_json()
    [role] = [
        k
        for k, v in as_json["Resources"].items()
        if v["Type"] == "AWS::IAM::Role" and k.startswith("AirflowExecutionRole")
    ]
    return role_policies(as_json, role, placeholder_resolver(as_json, REGION, ACCOUNT)).documents


def _allowed(documents: list[dict[str, Any]], operation: str, **params: str) -> bool:
    context = iam.authorization_context(
        "logs", operation, params, region=REGION, account=ACCOUNT, moto_resource="*"
    )
    assert context.modelled
    return iam.evaluate(documents, context.action, context.resource).allowed


REMOTE_LOGGING_CALLS = [
    ("DescribeLogGroups", {"logGroupNamePrefix": TASK_GROUP}),
    ("CreateLogGroup", {"logGroupName": TASK_GROUP}),
    ("CreateLogStream", {"logGroupName": TASK_GROUP, "logStreamName": "dag_id=x/attempt=1.log"}),
    ("PutLogEvents", {"logGroupName": TASK_GROUP, "logStreamName": "dag_id=x/attempt=1.log"}),
    ("GetLogEvents", {"logGroupName": TASK_GROUP, "logStreamName": "dag_id=x/attempt=1.log"}),
]


@pytest.mark.parametrize(("operation", "params"), REMOTE_LOGGING_CALLS)
def test_execution_role_allows_the_remote_logging_calls(
    default_template: Any, operation: str, params: dict[str, str]
) -> None:
    assert _allowed(_execution_role_documents(default_template), operation, **params)


def test_fails_when_describe_log_groups_is_scoped_to_the_environments_groups(
    default_template: Any,
) -> None:
    documents = [
        {**d, "Statement": [s for s in d["Statement"] if s.get("Sid") != "DescribeLogGroups"]}
        for d in _execution_role_documents(default_template)
    ]
    # The log-group statement still lists DescribeLogGroups on the six groups (CDK's
    # grant_read): AWS does not authorize it there.
    assert not _allowed(documents, "DescribeLogGroups", logGroupNamePrefix=TASK_GROUP)


def test_execution_role_grants_nothing_wider_than_mwaa_for_logs(default_template: Any) -> None:
    documents = _execution_role_documents(default_template)
    other = "airflow-openmwaa-other-Task"  # another environment's group shares our prefix

    assert not _allowed(documents, "CreateLogGroup", logGroupName=other)
    assert not _allowed(documents, "PutLogEvents", logGroupName=other, logStreamName="s")
    assert not _allowed(documents, "CreateLogGroup", logGroupName="/aws/lambda/anything")
    wide = [
        s
        for d in documents
        for s in d["Statement"]
        if any(str(a).startswith("logs:") for a in iam._as_list(s["Action"]))
        and any(str(r).endswith("log-group:*") for r in iam._as_list(s["Resource"]))
    ]
    assert [iam._as_list(s["Action"]) for s in wide] == [["logs:DescribeLogGroups"]]
