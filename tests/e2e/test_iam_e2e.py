"""End to end under IAM: every role's calls were allowed, and a missing permission fails.

Every Airflow component runs with the access key of a moto user holding exactly its task
role's policies from the template, the ECS secrets are read as the task execution roles, and
the DAG sync and autoscaler handlers sign as their functions' roles (see conftest.py). The
moto server authorizes each call as AWS does (tests/e2e/iam.py) and records the decision.
This module runs after the other end-to-end modules (pytest orders them by name), so the
record covers a DAG run on a worker with its log in CloudWatch, DAG sync and autoscaling.

Where moto's own evaluation is coarser than AWS's, iam.py replaces it: see its docstring for
what is modelled and what is not (resource policies, KMS key policies).
"""

from __future__ import annotations

import collections
import re
import time
from typing import Any

import pytest

from .conftest import COMPONENTS, AirflowUnderTest
from .localenv import Process, free_port, start_process
from .principals import ADMIN, create_user, role_policies
from .private_network import endpoint_services, roles_inside_the_vpc, services_without_endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

EXPECTED_CALLS = {
    # role user -> calls it must have made (and been allowed) during the session
    "task role": {
        "logs:DescribeLogGroups",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "secretsmanager:GetSecretValue",
    },
    "task execution role": {"secretsmanager:GetSecretValue"},
    "dag_sync.handler.handler": {"s3:GetObject"},
    "autoscaler.handler.handler": {
        "sqs:GetQueueAttributes",
        "ecs:DescribeServices",
        "ecs:UpdateService",
        "cloudwatch:PutMetricData",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    },
}


def _role_of_tasks(airflow: AirflowUnderTest, attribute: str) -> set[str]:
    from .cfn import task_specs

    return {getattr(t, attribute) for t in task_specs(airflow.template) if getattr(t, attribute)}


def test_every_call_a_role_made_was_modelled_and_allowed(airflow: AirflowUnderTest) -> None:
    roles = set(airflow.principals) - {ADMIN}
    decisions = [d for d in airflow.decisions() if d["principal"] in roles]
    assert decisions, "no call was made with a role's credentials"

    unmodelled = sorted({(d["principal"], d["action"]) for d in decisions if not d["modelled"]})
    denied = sorted(
        {
            (d["principal"], d["action"], d["resource"], d["reason"])
            for d in decisions
            if not d["allowed"]
        }
    )
    counts = collections.Counter((d["principal"], d["action"]) for d in decisions)
    print("\nIAM_E2E calls by role (principal, action: count):")
    for (principal, action), count in sorted(counts.items()):
        print(f"  {principal}  {action}: {count}")

    assert unmodelled == [], "calls whose AWS authorization iam.py does not model"
    assert denied == [], "calls a role's policy does not allow"
    allowed = collections.defaultdict(set)
    for decision in decisions:
        allowed[decision["principal"]].add(decision["action"])
    groups = {
        "task role": _role_of_tasks(airflow, "task_role"),
        "task execution role": _role_of_tasks(airflow, "execution_role"),
        "dag_sync.handler.handler": {airflow.function_principal("dag_sync.handler.handler").user},
        "autoscaler.handler.handler": {
            airflow.function_principal("autoscaler.handler.handler").user
        },
    }
    for group, expected in EXPECTED_CALLS.items():
        made = set().union(*(allowed[role] for role in groups[group]))
        assert expected <= made, f"{group} never made {sorted(expected - made)}"


def _private_variant() -> dict[str, Any]:
    """The e2e's environment (app.py's stack and environment ids, class and name) with
    `private_network=True`: the same roles, reaching AWS through VPC endpoints only."""
    from aws_cdk import assertions

    from openmwaa import EnvironmentClass
    from tests.stacks import deployable_stack

    stack = deployable_stack(
        environment_name="openmwaa",
        environment_class=EnvironmentClass.MW1_SMALL,
        private_network=True,
    )
    return dict(assertions.Template.from_stack(stack).to_json())


def test_every_service_called_from_inside_the_vpc_has_an_endpoint_in_private_mode(
    airflow: AirflowUnderTest,
) -> None:
    """The calls recorded under IAM, made by roles that run inside the VPC, each reach a
    service the private-mode template has a VPC endpoint for (or one that makes no network
    call, such as iam:PassRole). Fails naming the service when one has no endpoint."""
    private = _private_variant()
    inside = roles_inside_the_vpc(private)
    callers = set(airflow.principals) - {ADMIN}
    assert callers & inside, f"no recorded caller runs inside the VPC: {sorted(callers)}"
    by_service: dict[str, set[str]] = collections.defaultdict(set)
    outside: set[str] = set()
    for decision in airflow.decisions():
        if decision["principal"] in inside:
            by_service[decision["action"].split(":", 1)[0]].add(decision["action"])
        elif decision["principal"] in callers:
            outside.add(decision["principal"])
    endpoints = endpoint_services(private)
    print("\nPRIVATE_NETWORK services called from inside the VPC (service: actions):")
    for service, actions in sorted(by_service.items()):
        print(f"  {service}: {', '.join(sorted(actions))}")
    print(f"  callers outside the VPC in private mode: {sorted(outside)}")
    print(f"  endpoints of the private template: {sorted(endpoints)}")

    assert {"sqs", "logs", "secretsmanager", "s3"} <= set(by_service), sorted(by_service)
    assert services_without_endpoint(by_service, endpoints - {"sqs"}), (
        "the check cannot fail: a template without the SQS endpoint passed it"
    )
    assert services_without_endpoint(by_service, endpoints) == {}


def _without_account_wide_log_permissions(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The execution role's policy as it was before remote logging was fixed: DescribeLogGroups
    only on the environment's groups (CDK's grant_read), no CreateLogGroup."""
    removed = {"DescribeLogGroups", "CreateOwnLogGroups"}
    trimmed = [
        {**d, "Statement": [s for s in d["Statement"] if s.get("Sid") not in removed]}
        for d in documents
    ]
    assert sum(len(d["Statement"]) for d in trimmed) == sum(
        len(d["Statement"]) for d in documents
    ) - len(removed), "the execution role's statements are not where this test expects them"
    return trimmed


def test_fails_when_the_task_role_cannot_describe_log_groups(airflow: AirflowUnderTest) -> None:
    """The triggerer starts Airflow's CloudWatch task handler at once; with the pre-fix policy
    (DescribeLogGroups scoped to single groups, which AWS never matches) it must fail."""
    launch = airflow.launches["triggerer"]
    task_roles = _component_task_roles(airflow)
    assert len(task_roles) == 1, f"expected one task role for every component: {task_roles}"
    (task_role,) = task_roles
    documents = role_policies(airflow.template, task_role, airflow.provisioned.resolver).documents
    narrowed = create_user(
        airflow.aws.client("iam"),
        f"narrowed-{int(time.time())}",
        _without_account_wide_log_permissions(documents),
    )
    env = {
        **launch.env,
        **narrowed.environment(),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }
    log = airflow.work_dir / "logs" / "triggerer-narrowed.log"
    process = start_process("triggerer-narrowed", launch.argv, env, log, str(launch.cwd))
    try:
        expected = {("logs:DescribeLogGroups", False), ("logs:CreateLogGroup", False)}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.popen.poll() is None:
            if expected <= _decisions(airflow, narrowed.user):
                break
            time.sleep(2)
        denied = _decisions(airflow, narrowed.user)
        logged_until = time.monotonic() + 60
        while time.monotonic() < logged_until and not _access_denied_logged(process):
            time.sleep(1)
    finally:
        process.stop(grace=20)

    assert ("logs:DescribeLogGroups", False) in denied, airflow.diagnostics()
    assert ("logs:CreateLogGroup", False) in denied, process.log_tail()
    assert _access_denied_logged(process), process.log_tail()


def _component_task_roles(airflow: AirflowUnderTest) -> set[str | None]:
    """The task roles of the task definitions that run an Airflow component (the execution
    role, MWAA's name for it), not the requirements build's."""
    from .cfn import task_specs

    return {
        task.task_role
        for task in task_specs(airflow.template)
        if any(c.component in COMPONENTS for c in task.containers)
    }


def _decisions(airflow: AirflowUnderTest, user: str) -> set[tuple[str, bool]]:
    """(action, allowed) of every call ``user`` made."""
    return {(d["action"], d["allowed"]) for d in airflow.decisions() if d["principal"] == user}


def _access_denied_logged(process: Process) -> bool:
    return re.search(r"AccessDenied|not authorized", process.log_text()) is not None
