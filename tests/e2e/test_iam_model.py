"""The end-to-end test's IAM model (fast: no servers): AWS's resource ARNs and evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from .iam import UnsupportedPolicyError, authorization_context, evaluate, evaluate_context
from .principals import without_actions

R, A = "us-east-1", "123456789012"


def _context(signing_name: str, operation: str, **params: Any) -> Any:
    return authorization_context(
        signing_name, operation, params, region=R, account=A, moto_resource="moto-resource"
    )


def _policy(*statements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


def test_describe_log_groups_is_authorized_on_every_group_of_the_account() -> None:
    context = _context("logs", "DescribeLogGroups", logGroupNamePrefix="airflow-x-Task")

    assert context.resource == f"arn:aws:logs:{R}:{A}:log-group::log-stream:"
    one_group = _policy(
        {
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": f"arn:aws:logs:{R}:{A}:log-group:airflow-x-Task:*",
        }
    )
    every_group = _policy(
        {
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": f"arn:aws:logs:{R}:{A}:log-group:*",
        }
    )
    assert not evaluate(one_group, context.action, context.resource).allowed
    assert evaluate(every_group, context.action, context.resource).allowed


def test_log_stream_actions_name_the_group_and_stream() -> None:
    put = _context("logs", "PutLogEvents", logGroupName="g", logStreamName="s/1")
    create = _context("logs", "CreateLogGroup", logGroupName="g")

    assert put.resource == f"arn:aws:logs:{R}:{A}:log-group:g:log-stream:s/1"
    assert create.resource == f"arn:aws:logs:{R}:{A}:log-group:g:log-stream:"
    grant = _policy(
        {
            "Effect": "Allow",
            "Action": ["logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:{R}:{A}:log-group:g:*",
        }
    )
    assert evaluate(grant, put.action, put.resource).allowed
    assert not evaluate(grant, "logs:PutLogEvents", put.resource.replace(":g:", ":h:")).allowed


def test_s3_and_sqs_keep_the_resource_moto_computed() -> None:
    assert _context("s3", "GetObject").resource == "moto-resource"
    assert _context("sqs", "SendMessage").resource == "moto-resource"


def test_cloudwatch_is_signed_as_monitoring_and_carries_its_namespace() -> None:
    context = _context("monitoring", "PutMetricData", Namespace="OpenMWAA")
    conditioned = _policy(
        {
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "OpenMWAA"}},
        }
    )

    assert (context.action, context.resource) == ("cloudwatch:PutMetricData", "*")
    assert evaluate(conditioned, context.action, "*", context.condition_keys).allowed
    other = _context("monitoring", "PutMetricData", Namespace="Other")
    assert not evaluate(conditioned, other.action, "*", other.condition_keys).allowed


def test_ecs_service_actions_use_the_service_arn_and_the_cluster_key() -> None:
    update = _context("ecs", "UpdateService", cluster="c", service="workers")
    listing = _context("ecs", "ListServices", cluster="c")
    cluster_arn = f"arn:aws:ecs:{R}:{A}:cluster/c"

    assert update.resource == f"arn:aws:ecs:{R}:{A}:service/c/workers"
    assert listing.condition_keys == {"ecs:cluster": cluster_arn}
    conditioned = _policy(
        {
            "Effect": "Allow",
            "Action": "ecs:ListServices",
            "Resource": "*",
            "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}},
        }
    )
    assert evaluate(conditioned, listing.action, "*", listing.condition_keys).allowed
    elsewhere = _context("ecs", "ListServices", cluster="other")
    assert not evaluate(conditioned, elsewhere.action, "*", elsewhere.condition_keys).allowed


def test_describe_services_of_several_services_needs_each_of_them() -> None:
    """The autoscaler describes every service of the environment, up to 10 per call."""
    batch = _context("ecs", "DescribeServices", cluster="c", services=["a", "b", "c"])
    arns = [f"arn:aws:ecs:{R}:{A}:service/c/{name}" for name in ("a", "b", "c")]
    assert (batch.resource, *batch.more_resources) == tuple(arns)
    assert batch.modelled
    every = _policy({"Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": arns})
    assert evaluate_context(every, batch).allowed
    two = _policy({"Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": arns[:2]})
    assert not evaluate_context(two, batch).allowed
    single = _context("ecs", "DescribeServices", cluster="c", services=["a"])
    assert (single.resource, single.more_resources) == (arns[0], ())
    assert evaluate_context(two, single).allowed


def test_secret_names_become_arns() -> None:
    named = _context("secretsmanager", "GetSecretValue", SecretId="airflow/connections/x")
    arn = f"arn:aws:secretsmanager:{R}:{A}:secret:db-AbCdEf"

    assert named.resource == f"arn:aws:secretsmanager:{R}:{A}:secret:airflow/connections/x"
    assert _context("secretsmanager", "GetSecretValue", SecretId=arn).resource == arn


def test_dynamodb_item_actions_use_the_table_arn() -> None:
    put = _context("dynamodb", "PutItem", TableName="state", Item={})
    query = _context("dynamodb", "Query", TableName="state")
    table_arn = f"arn:aws:dynamodb:{R}:{A}:table/state"

    assert (put.action, put.resource, put.modelled) == ("dynamodb:PutItem", table_arn, True)
    assert query.resource == table_arn
    assert _context("dynamodb", "DeleteItem", TableName=table_arn).resource == table_arn
    own_table = _policy({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table_arn})
    assert evaluate(own_table, put.action, put.resource, put.condition_keys).allowed
    other = _context("dynamodb", "PutItem", TableName="other")
    assert not evaluate(own_table, other.action, other.resource, other.condition_keys).allowed


def test_unknown_actions_are_marked_unmodelled() -> None:
    context = _context("kinesis", "PutRecord")

    assert not context.modelled
    assert context.resource == "moto-resource"


def test_explicit_deny_wins_and_wildcards_follow_iam() -> None:
    policies = _policy(
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret?"},
    )

    assert evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/dags/x.py").allowed
    assert not evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/secret1").allowed
    assert not evaluate(policies, "s3:PutObject", "arn:aws:s3:::b/dags/x.py").allowed
    assert evaluate(policies, "S3:GETOBJECT", "arn:aws:s3:::b/x").allowed  # actions: any case
    assert not evaluate(policies, "s3:GetObject", "arn:aws:s3:::B/x").allowed  # ARNs: exact


def test_missing_condition_key_fails_the_condition_unless_if_exists() -> None:
    strict = _policy(
        {
            "Effect": "Allow",
            "Action": "ecs:ListServices",
            "Resource": "*",
            "Condition": {"ArnEquals": {"ecs:cluster": "arn:c"}},
        }
    )
    lenient = _policy(
        {
            "Effect": "Allow",
            "Action": "ecs:ListServices",
            "Resource": "*",
            "Condition": {"ArnEqualsIfExists": {"ecs:cluster": "arn:c"}},
        }
    )

    assert not evaluate(strict, "ecs:ListServices", "*").allowed
    assert evaluate(lenient, "ecs:ListServices", "*").allowed


def test_unsupported_condition_operators_fail_loudly() -> None:
    policies = _policy(
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"s3:max-keys": "10"}},
        }
    )

    with pytest.raises(UnsupportedPolicyError):
        evaluate(policies, "s3:GetObject", "arn:aws:s3:::b/k", {"s3:max-keys": "5"})


def test_without_actions_drops_emptied_statements() -> None:
    documents = _policy(
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["logs:PutLogEvents", "logs:CreateLogGroup"],
            "Resource": "*",
        },
    )

    trimmed = without_actions(documents, {"logs:CreateLogGroup"})

    assert trimmed[0]["Statement"] == [
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"}
    ]
    assert documents[0]["Statement"][0]["Action"] == ["logs:CreateLogGroup"]  # not mutated
