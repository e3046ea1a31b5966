"""What `AirflowEnvironment` exposes to the rest of a CDK app: peers, secrets, URL, metrics."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from openmwaa import AirflowEnvironment, WorkerPool


@pytest.fixture
def built() -> tuple[cdk.Stack, AirflowEnvironment]:
    """A fresh stack per test: a synthesized app ignores constructs added afterwards."""
    stack = cdk.Stack(cdk.App(), "Stack", env=cdk.Environment(region="us-east-1"))
    env = AirflowEnvironment(
        stack, "Airflow", environment_name="prod", worker_pools=[WorkerPool("long")]
    )
    return stack, env


def test_connections_let_another_resource_admit_the_environment(
    built: tuple[cdk.Stack, AirflowEnvironment],
) -> None:
    stack, env = built
    vpc = env.vpc
    other = ec2.SecurityGroup(stack, "Warehouse", vpc=vpc)
    other.connections.allow_from(env, ec2.Port.tcp(5439), "Airflow to the warehouse")
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 5439,
            "GroupId": {"Fn::GetAtt": [stack.get_logical_id(other.node.default_child), "GroupId"]},  # type: ignore[arg-type]
            "SourceSecurityGroupId": {
                "Fn::GetAtt": [
                    stack.get_logical_id(env.security_group.node.default_child),  # type: ignore[arg-type]
                    "GroupId",
                ]
            },
        },
    )


def test_admin_secret_is_the_one_the_runtime_signs_in_with(
    built: tuple[cdk.Stack, AirflowEnvironment],
) -> None:
    stack, env = built
    secret_ref = {"Ref": stack.get_logical_id(env.admin_secret.node.default_child)}  # type: ignore[arg-type]
    tasks = assertions.Template.from_stack(stack).find_resources("AWS::ECS::TaskDefinition")
    admin = [
        secret["ValueFrom"]
        for task in tasks.values()
        for container in task["Properties"]["ContainerDefinitions"]
        for secret in container.get("Secrets", [])
        if secret["Name"] == "OPENMWAA_ADMIN_SECRET"
    ]
    assert admin and all(value == secret_ref for value in admin)


def test_url_is_the_load_balancers(built: tuple[cdk.Stack, AirflowEnvironment]) -> None:
    stack, env = built
    assert stack.resolve(env.url) == stack.resolve(env.web.url)
    assert "LoadBalancer" in str(stack.resolve(env.url))


def test_metric_helpers_name_the_metrics_the_autoscaler_publishes(
    built: tuple[cdk.Stack, AirflowEnvironment],
) -> None:
    _, env = built
    queued = env.metric_queued_tasks()
    assert (queued.namespace, queued.metric_name) == ("OpenMWAA", "QueuedTasks")
    assert queued.dimensions == {"Environment": "prod"}
    pool = env.metric_running_workers(worker_pool="long")
    assert pool.metric_name == "RunningWorkers"
    assert pool.dimensions == {"Environment": "prod", "WorkerPool": "long"}
    assert env.metric_dag_syntax_errors().statistic == "Sum"


def test_metric_helpers_match_the_autoscalers_published_dimensions(
    built: tuple[cdk.Stack, AirflowEnvironment],
) -> None:
    stack, env = built
    functions = assertions.Template.from_stack(stack).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "autoscaler.handler.handler"}}
    )
    assert len(functions) == 2  # the environment's and the pool's
    queued = env.metric_queued_tasks()
    pools = set()
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["ENVIRONMENT_NAME"] == queued.dimensions["Environment"] == "prod"
        assert variables["METRIC_NAMESPACE"] == queued.namespace == "OpenMWAA"
        pools.add(variables.get("WORKER_POOL", ""))
    assert pools == {"", env.metric_queued_tasks(worker_pool="long").dimensions["WorkerPool"]}


def test_bundled_app_outputs_the_url_and_the_admin_secret(
    default_template: assertions.Template,
) -> None:
    outputs = default_template.find_outputs("*")
    assert "LoadBalancer" in str(outputs["AirflowUrl"]["Value"])
    assert outputs["AdminSecretArn"]["Value"] == {
        "Ref": next(
            logical_id
            for logical_id, resource in default_template.find_resources(
                "AWS::SecretsManager::Secret"
            ).items()
            if "admin user" in resource["Properties"]["Description"]
        )
    }


def test_rds_connections_accept_the_environment_as_a_peer(
    built: tuple[cdk.Stack, AirflowEnvironment],
) -> None:
    stack, env = built
    cluster = rds.DatabaseCluster(
        stack,
        "Warehouse2",
        engine=rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.VER_16_4
        ),
        writer=rds.ClusterInstance.serverless_v2("Writer"),
        vpc=env.vpc,
    )
    cluster.connections.allow_default_port_from(env)
    template = assertions.Template.from_stack(stack)
    [cluster_group] = cluster.connections.security_groups
    group_id = {"Fn::GetAtt": [stack.get_logical_id(cluster_group.node.default_child), "GroupId"]}  # type: ignore[arg-type]
    sources = [
        rule["Properties"]["SourceSecurityGroupId"]
        for rule in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == group_id
    ]
    env_group = stack.get_logical_id(env.security_group.node.default_child)  # type: ignore[arg-type]
    assert {"Fn::GetAtt": [env_group, "GroupId"]} in sources


def test_alias_is_none_without_a_hosted_zone(built: tuple[cdk.Stack, AirflowEnvironment]) -> None:
    _, env = built
    assert env.web.alias is None
    assert not assertions.Template.from_stack(built[0]).find_resources("AWS::Route53::RecordSet")
