"""Worker pools: a queue, a service and an autoscaler per pool, and the runtime's side."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from openmwaa import WorkerPool
from openmwaa.environment_props import AirflowEnvironmentProps, ResolvedProps, resolve
from openmwaa.runtime import config
from openmwaa.validation import validate
from tests.conftest import template_of

VALID = AirflowEnvironmentProps(
    environment_name="prod-airflow",
    environment_class="mw1.small",
    airflow_version="3.3.2",
    schedulers=2,
    min_workers=1,
    max_workers=10,
    min_webservers=2,
    max_webservers=2,
    webserver_access_mode="PRIVATE_ONLY",
    airflow_configuration_options={},
)


GIVEN: Any = object()
"""Stands for a resource the user passes (a VPC, a hosted zone...): rules only ask whether
it was given."""


def resolved(**changes: Any) -> ResolvedProps:
    return resolve(dataclasses.replace(VALID, **changes), construct_id="Airflow")


def problems(**changes: Any) -> list[str]:
    return validate(resolved(**changes))


@pytest.fixture(scope="module")
def pool_template():  # type: ignore[no-untyped-def]
    return template_of(
        worker_fargate_spot=True,
        worker_pools=[WorkerPool("long-running", min_workers=0, max_workers=3)],
    )


def _worker_containers(template) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Task definition logical id -> its worker container."""
    found = {}
    for logical_id, task in template.find_resources("AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] == "worker":
                found[logical_id] = container
    return found


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_a_pool_is_valid() -> None:
    assert problems(worker_pools=(WorkerPool("long-running", 0, 5),)) == []


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        (WorkerPool("Long"), "worker_pools[0].queue: got 'Long'"),
        (WorkerPool("default"), "worker_pools[0].queue: got 'default'"),
        (WorkerPool("x" * 41), "worker_pools[0].queue"),
        (WorkerPool("long", min_workers=-1), "worker_pools[0].min_workers: got -1"),
        (WorkerPool("long", max_workers=0), "worker_pools[0].max_workers: got 0"),
        (WorkerPool("long", max_workers=201), "worker_pools[0].max_workers: got 201"),
        (WorkerPool("long", 3, 2), "less than min_workers 3"),
    ],
)
def test_fails_when_a_pool_is_invalid(pool: WorkerPool, expected: str) -> None:
    found = problems(worker_pools=(pool,))
    assert len(found) == 1 and expected in found[0], found


def test_fails_when_two_pools_share_a_queue() -> None:
    found = problems(worker_pools=(WorkerPool("gpu"), WorkerPool("gpu")))
    assert found == ["worker_pools[1].queue: got 'gpu' twice; allowed: unique names"]


def test_fails_when_micro_has_a_pool() -> None:
    found = problems(
        environment_class="mw1.micro",
        min_workers=1,
        max_workers=1,
        min_webservers=1,
        max_webservers=1,
        schedulers=1,
        worker_pools=(WorkerPool("long"),),
    )
    assert found and found[0].startswith("worker_pools: mw1.micro runs one worker")


def test_fails_when_worker_pools_is_one_pool_not_a_list() -> None:
    assert problems(worker_pools=WorkerPool("long")) == [
        "worker_pools: got WorkerPool; allowed: a list of WorkerPool"
    ]
    with pytest.raises(ValueError, match="worker_pools: got WorkerPool"):
        template_of(worker_pools=WorkerPool("long"))


def test_fails_when_there_are_more_than_ten_pools() -> None:
    pools = tuple(WorkerPool(f"pool-{i}") for i in range(11))
    assert problems(worker_pools=pools) == [
        "worker_pools: got 11 pools; allowed: at most 10 (each adds a task definition and a "
        "dozen resources to the 1 MB template)"
    ]
    assert problems(worker_pools=pools[:10]) == []


@pytest.mark.parametrize("count", ["2", 2.5, True, None])
def test_fails_when_a_pool_count_is_not_an_integer(count: object) -> None:
    found = problems(worker_pools=(WorkerPool("long", max_workers=count),))  # type: ignore[arg-type]
    assert found == [f"worker_pools[0].max_workers: got {count!r}; allowed: 1 to 200"]


def test_each_pool_autoscaler_has_an_errors_alarm(pool_template) -> None:
    alarms = pool_template.find_resources("AWS::CloudWatch::Alarm")
    pool_alarms = [k for k in alarms if k.startswith("AirflowMonitoringPoolAutoscalerErrors")]
    assert len(pool_alarms) == 1
    [alarm] = [alarms[k] for k in pool_alarms]
    assert "worker pool long-running" in alarm["Properties"]["AlarmDescription"]


def test_fails_when_a_pool_is_not_a_worker_pool() -> None:
    assert problems(worker_pools=({"queue": "long"},)) == [
        "worker_pools[0]: got dict; allowed: a WorkerPool"
    ]


def test_the_construct_refuses_an_invalid_pool() -> None:
    with pytest.raises(ValueError, match=r"worker_pools\[0\]\.queue: got 'default'"):
        template_of(worker_pools=[WorkerPool("default")])


def test_a_pool_gets_its_own_queue_service_and_autoscaler(pool_template) -> None:
    pool_template.resource_count_is("AWS::SQS::Queue", 2)
    workers = _worker_containers(pool_template)
    [pool_task] = [k for k in workers if "WorkerPoollongrunning" in k]
    environment = _env(workers[pool_task])
    assert environment["OPENMWAA_CELERY_WORKER_QUEUE"] == "long-running"
    functions = pool_template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "autoscaler.handler.handler"}}
    )
    pool_functions = [
        f
        for f in functions.values()
        if "WORKER_POOL" in f["Properties"]["Environment"]["Variables"]
    ]
    [pool_function] = pool_functions
    variables = pool_function["Properties"]["Environment"]["Variables"]
    assert variables["WORKER_POOL"] == "long-running"
    assert (variables["MIN_WORKERS"], variables["MAX_WORKERS"]) == ("0", "3")
    assert variables["QUEUE_URL"]["Ref"].startswith("AirflowBrokerPoolQueuelongrunning")
    assert variables["SERVICE_NAME"]["Fn::GetAtt"][0].startswith("AirflowServicesWorkerPool")
    assert len(functions) == 2


def test_a_pool_runs_on_demand_beside_spot_workers(pool_template) -> None:
    strategies = {
        logical_id: service["Properties"].get("CapacityProviderStrategy")
        for logical_id, service in pool_template.find_resources("AWS::ECS::Service").items()
    }
    [pool] = [k for k in strategies if "WorkerPoollongrunning" in k]
    [worker] = [k for k in strategies if k.startswith("AirflowServicesWorkerService")]
    assert strategies[pool] is None, "an on-demand pool must not use Fargate Spot"
    assert strategies[worker] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]


def test_every_component_knows_every_pool_queue(pool_template) -> None:
    checked = set()
    for logical_id, task in pool_template.find_resources("AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] in ("openmwaa-runtime", "build-requirements"):
                continue
            pools = _env(container)["OPENMWAA_CELERY_POOL_QUEUES"]
            parts = pools["Fn::Join"][1]
            assert parts[0] == "long-running=", logical_id
            assert parts[1]["Ref"].startswith("AirflowBrokerPoolQueuelongrunning")
            checked.add(container["Name"])
    assert checked == {
        "scheduler",
        "dag-processor",
        "triggerer",
        "api-server",
        "execution-api",
        "worker",
    }


def test_the_role_may_use_the_pool_queue(pool_template) -> None:
    policies = pool_template.find_resources("AWS::IAM::Policy")
    [role_policy] = [
        p
        for k, p in policies.items()
        if k.startswith("AirflowExecutionRole") and "DefaultPolicy" in k
    ]
    statements = role_policy["Properties"]["PolicyDocument"]["Statement"]
    pool_statements = [
        s
        for s in statements
        if "AirflowBrokerPoolQueuelongrunning" in json.dumps(s.get("Resource"))
    ]
    actions = {a for s in pool_statements for a in s["Action"]}
    assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions


def test_parallelism_covers_the_pools_workers(pool_template) -> None:
    workers = _worker_containers(pool_template)
    assert len(workers) == 2  # the environment's workers and the pool's
    for container in workers.values():
        environment = _env(container)
        # (10 + 3) workers x 5 tasks over 2 schedulers
        assert environment["AIRFLOW__CORE__PARALLELISM"] == "33"
        assert environment["AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT"] == "65"


def test_scale_in_protection_is_granted_once(pool_template) -> None:
    text = json.dumps(pool_template.to_json())
    assert text.count('"Sid": "WorkerScaleInProtection"') == 1


def test_the_runtime_maps_every_pool_queue_for_kombu() -> None:
    pools = config.parse_pool_queues("long-running=https://sqs/1/a,gpu=https://sqs/1/b")
    queues = json.loads(config.predefined_queues("main", "https://sqs/1/main", pools))
    assert queues == {
        "main": {"url": "https://sqs/1/main"},
        "default": {"url": "https://sqs/1/main"},
        "long-running": {"url": "https://sqs/1/a"},
        "gpu": {"url": "https://sqs/1/b"},
    }
    assert config.parse_pool_queues("") == {}


def test_the_runtime_refuses_a_malformed_pool_list() -> None:
    with pytest.raises(config.ConfigError, match="OPENMWAA_CELERY_POOL_QUEUES: 'broken'"):
        config.parse_pool_queues("broken")


def test_a_pool_worker_consumes_only_its_queue() -> None:
    assert config.airflow_command("worker", 3, "8080", "long-running") == [
        "airflow",
        "celery",
        "worker",
        "--queues",
        "long-running",
    ]
    assert config.airflow_command("worker", 3, "8080") == ["airflow", "celery", "worker"]
