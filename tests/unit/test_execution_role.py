from __future__ import annotations

from typing import Any


def _role_statements(template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    [policy] = [v for k, v in policies.items() if k.startswith("AirflowExecutionRole")]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_execution_role_is_assumed_by_ecs_tasks(default_template) -> None:
    roles = default_template.find_resources("AWS::IAM::Role")
    [role] = [v for k, v in roles.items() if k.startswith("AirflowExecutionRole")]
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_execution_role_reads_only_its_own_bucket(default_template) -> None:
    s3 = [
        s
        for s in _role_statements(default_template)
        if any(a.startswith("s3:") for a in _actions(s))
    ]
    assert s3, "no S3 statement"
    for statement in s3:
        assert not any(
            a in ("s3:PutObject", "s3:DeleteObject*", "s3:*") for a in _actions(statement)
        )
        for resource in statement["Resource"]:
            assert "AirflowSourceBucket" in str(resource)


def test_execution_role_uses_only_the_broker_queue(default_template) -> None:
    sqs = [
        s
        for s in _role_statements(default_template)
        if any(a.startswith("sqs:") for a in _actions(s))
    ]
    actions = {a for s in sqs for a in _actions(s)}
    assert {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    } <= actions
    assert "sqs:CreateQueue" not in actions and "sqs:ListQueues" not in actions
    for statement in sqs:
        assert statement["Resource"]["Fn::GetAtt"][0].startswith("AirflowBrokerQueue")


def test_execution_role_reads_only_the_secrets_backend_prefixes(default_template) -> None:
    [statement] = [
        s for s in _role_statements(default_template) if s.get("Sid") == "SecretsManagerBackend"
    ]
    assert set(_actions(statement)) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    rendered = str(statement["Resource"])
    assert "secret:airflow/connections/*" in rendered and "secret:airflow/variables/*" in rendered
    assert len(statement["Resource"]) == 2


def test_execution_role_may_put_custom_metrics(default_template) -> None:
    [statement] = [s for s in _role_statements(default_template) if s.get("Sid") == "CustomMetrics"]
    assert _actions(statement) == ["cloudwatch:PutMetricData"]


def test_execution_role_writes_only_the_environment_log_groups(default_template) -> None:
    logs = [
        s
        for s in _role_statements(default_template)
        if any(a.startswith("logs:") for a in _actions(s)) and s.get("Sid") != "DescribeLogGroups"
    ]
    assert logs
    for statement in logs:
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for resource in resources:
            assert resource["Fn::GetAtt"][0].startswith("AirflowLogs")


def test_execution_role_uses_the_customer_key_when_given(kms_template) -> None:
    statements = _role_statements(kms_template)
    kms = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
    assert kms and all(s["Resource"]["Fn::GetAtt"][0].startswith("Key") for s in kms)


def test_execution_role_has_no_kms_statement_without_key(default_template) -> None:
    assert not [
        s
        for s in _role_statements(default_template)
        if any(a.startswith("kms:") for a in _actions(s))
    ]
