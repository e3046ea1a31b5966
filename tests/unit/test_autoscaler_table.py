"""The autoscaler's state table: on demand, TTL, encrypted, destroyed with the stack, and the
only DynamoDB resource its function may touch."""

from __future__ import annotations

from typing import Any

from aws_cdk import assertions
from aws_cdk.assertions import Match

from tests.stacks import kms_imported_vpc_stack


def _table(template: assertions.Template) -> tuple[str, dict[str, Any]]:
    [(logical_id, table)] = template.find_resources("AWS::DynamoDB::Table").items()
    return logical_id, table


def _statements(template: assertions.Template) -> list[dict[str, Any]]:
    [policy] = [
        p
        for k, p in template.find_resources("AWS::IAM::Policy").items()
        if k.startswith("AirflowWorkerAutoscalerFunctionServiceRole")
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_autoscaler_table_is_on_demand_ephemeral_state(default_template) -> None:
    logical_id, table = _table(default_template)
    assert logical_id.startswith("AirflowWorkerAutoscalerState")
    assert table["DeletionPolicy"] == "Delete"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires", "Enabled": True}
    assert "TableName" not in props and "PointInTimeRecoverySpecification" not in props
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]


def test_autoscaler_may_only_use_its_own_table(default_template) -> None:
    logical_id, _ = _table(default_template)
    dynamo = [s for s in _statements(default_template) if "dynamodb" in str(s["Action"])]
    assert len(dynamo) == 1
    assert sorted(dynamo[0]["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]
    assert dynamo[0]["Resource"] == {"Fn::GetAtt": [logical_id, "Arn"]}
    assert not any(
        "cloudwatch:GetMetricData" in str(s["Action"]) for s in _statements(default_template)
    )


def test_autoscaler_function_is_told_its_table(default_template) -> None:
    logical_id, _ = _table(default_template)
    default_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "autoscaler.handler.handler",
            "Environment": {"Variables": Match.object_like({"TABLE_NAME": {"Ref": logical_id}})},
        },
    )


def test_autoscaler_table_is_encrypted_with_the_customer_key() -> None:
    stack, _ = kms_imported_vpc_stack()
    template = assertions.Template.from_stack(stack)
    _, table = _table(template)
    [key_id] = template.find_resources("AWS::KMS::Key")
    customer_key = {"Fn::GetAtt": [key_id, "Arn"]}
    sse = table["Properties"]["SSESpecification"]
    assert sse == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": customer_key}
    [kms] = [s for s in _statements(template) if s.get("Sid") == "DemandHistoryEncryption"]
    assert "kms:Decrypt" in kms["Action"] and kms["Resource"] == customer_key
