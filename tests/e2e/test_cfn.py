"""The end-to-end test's template reader and resolver (fast: no Airflow, no servers)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from .cfn import Resolver, UnresolvableError, parse_secret_reference, task_specs
from .provision import (
    _remap,
    cloud_map_names,
    generate_secret_string,
    secret_value,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openmwaa/Admin-AbCdEf"


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        refs={"Queue": "http://127.0.0.1/1/q", "Logs": "airflow-x-Task"},
        attributes={("Queue", "QueueName"): "q", ("Logs", "Arn"): "arn:logs:x:*"},
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"},
        types={"Queue": "AWS::SQS::Queue"},
    )


def test_resolves_intrinsics(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Queue"}) == "http://127.0.0.1/1/q"
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "QueueName"]}) == "q"
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "q"
    assert resolver.resolve({"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}]]}) == "a:us-east-1"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolver.resolve(8080) == "8080"


def test_resolves_sub(resolver: Resolver) -> None:
    value = {"Fn::Sub": "${AWS::Region}/${Logs}/${Queue.QueueName}/${!Literal}"}

    assert resolver.resolve(value) == "us-east-1/airflow-x-Task/q/${Literal}"
    assert resolver.resolve({"Fn::Sub": ["${X}-${Logs}", {"X": {"Ref": "Queue"}}]}) == (
        "http://127.0.0.1/1/q-airflow-x-Task"
    )


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Ref": "AWS::StackId"},
        {"Fn::GetAtt": ["Queue", "Arn"]},
        {"Fn::ImportValue": "x"},
        {"Fn::Sub": "${Missing}"},
    ],
)
def test_fails_loudly_on_what_it_cannot_resolve(resolver: Resolver, value: object) -> None:
    with pytest.raises(UnresolvableError):
        resolver.resolve(value)


def test_secret_references() -> None:
    whole = parse_secret_reference(ARN)
    key = parse_secret_reference(f"{ARN}:password::")

    assert (whole.secret_arn, whole.json_key) == (ARN, None)
    assert (key.secret_arn, key.json_key) == (ARN, "password")
    with pytest.raises(UnresolvableError):
        parse_secret_reference("arn:aws:ssm:us-east-1:1:parameter/x")


def test_secret_value_follows_ecs_rules() -> None:
    secrets = {ARN: json.dumps({"username": "admin", "password": "pw", "port": 5432})}

    assert json.loads(secret_value(ARN, secrets))["username"] == "admin"
    assert secret_value(f"{ARN}:password::", secrets) == "pw"
    assert secret_value(f"{ARN}:port::", secrets) == "5432"
    with pytest.raises(UnresolvableError):
        secret_value(f"{ARN}:missing::", secrets)
    with pytest.raises(UnresolvableError):
        secret_value(ARN.replace("Admin", "Other"), secrets)


def test_generated_secrets_follow_their_rules() -> None:
    spec = {
        "ExcludeCharacters": "abc@/",
        "GenerateStringKey": "password",
        "PasswordLength": 40,
        "SecretStringTemplate": '{"username": "airflow"}',
    }

    value = json.loads(generate_secret_string(spec, random.Random(1)))

    assert value["username"] == "airflow"
    assert len(value["password"]) == 40
    assert not set("abc@/") & set(value["password"])
    plain = generate_secret_string({"ExcludePunctuation": True}, random.Random(1))
    assert len(plain) == 32 and plain.isalnum()


def test_task_specs_read_containers_volumes_and_dependencies() -> None:
    template = {
        "Resources": {
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Volumes": [{"Name": "efs", "EFSVolumeConfiguration": {}}, {"Name": "tmp"}],
                    "ContainerDefinitions": [
                        {"Name": "init", "Essential": False, "Command": ["true"]},
                        {
                            "Name": "scheduler",
                            "Command": ["python"],
                            "DependsOn": [{"ContainerName": "init", "Condition": "SUCCESS"}],
                            "MountPoints": [
                                {"SourceVolume": "efs", "ContainerPath": "/sync", "ReadOnly": True}
                            ],
                            "Environment": [{"Name": "OPENMWAA_COMPONENT", "Value": "scheduler"}],
                            "Secrets": [{"Name": "S", "ValueFrom": ARN}],
                        },
                    ],
                },
            }
        }
    }

    (task,) = task_specs(template)

    assert task.volumes == {"efs": True, "tmp": False}
    init, scheduler = task.containers
    assert (init.essential, init.component) == (False, None)
    assert scheduler.component == "scheduler"
    assert scheduler.depends_on == (("init", "SUCCESS"),)
    assert scheduler.mount_points[0].container_path == "/sync"
    assert scheduler.secrets == {"S": ARN}


def test_remap_replaces_container_paths_only_at_path_boundaries() -> None:
    mounts = {"/opt/openmwaa": Path("/tmp/v1"), "/opt/airflow/sync": Path("/tmp/sync")}

    assert _remap("python /opt/openmwaa/runtime.pyz", mounts) == "python /tmp/v1/runtime.pyz"
    assert _remap("/opt/airflow/sync", mounts) == "/tmp/sync"
    assert _remap("/opt/airflow/sync/dags", mounts) == "/tmp/sync/dags"
    assert _remap("/opt/openmwaa2/x", mounts) == "/opt/openmwaa2/x"


def test_cloud_map_names() -> None:
    template = {
        "Resources": {
            "Ns": {
                "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                "Properties": {"Name": "env.internal"},
            },
            "Svc": {
                "Type": "AWS::ServiceDiscovery::Service",
                "Properties": {"Name": "api-server", "NamespaceId": {"Fn::GetAtt": ["Ns", "Id"]}},
            },
        }
    }

    assert cloud_map_names(template) == {"api-server.env.internal"}
