"""`openmwaa cost` and the pricing core, against figures computed by hand.

Every expected dollar figure below is worked out in the comment next to it from the prices
written out in PRICES (the table's us-east-1 figures, which a test keeps equal to the
table), never from the code under test.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from openmwaa.cli import cost
from openmwaa.pricing import TABLE, TemplateError, Usage, estimate, mwaa_monthly
from openmwaa.pricing.endpoints import MWAA_PRIVATE_ROUTING, compare_endpoints, is_private
from openmwaa.pricing.model import usage_table_markdown
from openmwaa.pricing.prices import price_table_markdown
from openmwaa.pricing.scenarios import DEV_HOURS_ON, scenarios

REPO_ROOT = Path(__file__).resolve().parents[2]

# The prices the hand computations use, as read on 2026-12-01 (us-east-1).
PRICES = {
    "fargate.x86_64.vcpu_hour": 0.04048,
    "fargate.x86_64.gb_hour": 0.004445,
    "fargate.arm64.vcpu_hour": 0.03238,
    "fargate.arm64.gb_hour": 0.00356,
    # Spot: stated at 69% off on-demand, i.e. x 0.31.
    "fargate_spot.x86_64.vcpu_hour": 0.0125488,
    "fargate_spot.x86_64.gb_hour": 0.00137795,
    "fargate_spot.arm64.vcpu_hour": 0.0100378,
    "fargate_spot.arm64.gb_hour": 0.0011036,
    "aurora.acu_hour": 0.12,
    "aurora.storage_gb_month": 0.10,
    "aurora.io_million": 0.20,
    "nat.hour": 0.045,
    "nat.gb": 0.045,
    "ipv4.hour": 0.005,
    "alb.hour": 0.0225,
    "alb.lcu_hour": 0.008,
    "endpoint.az_hour": 0.01,
    "endpoint.gb": 0.01,
    "cloudwatch.metric_month": 0.30,
    "cloudwatch.alarm_metric_month": 0.10,
    "cloudwatch.dashboard_month": 3.00,
    "cloudwatch.put_metric_data_thousand": 0.01,
    "logs.ingest_gb": 0.50,
    "logs.vended_gb": 0.50,
    "logs.storage_gb_month": 0.03,
    "secrets.secret_month": 0.40,
    "kms.key_month": 1.00,
    "sqs.million_requests": 0.40,
    "lambda.arm64.gb_second": 0.0000133334,
    "lambda.million_requests": 0.20,
    "mwaa.metadata_gb_month": 0.10,
    "codeartifact.storage_gb_month": 0.05,
    "codeartifact.requests_10k": 0.05,
}

QUIET = Usage(
    db_storage_gb=0,
    db_io_millions=0,
    log_gb=0,
    flow_log_gb=0,
    nat_gb=0,
    alb_lcu=0,
    endpoint_gb=0,
    efs_gb=0,
    efs_read_gb=0,
    efs_write_gb=0,
    sqs_million_requests=0,
    ecr_gb=0,
    s3_gb=0,
    codeartifact_gb=0,
    codeartifact_requests=0,
)
"""No usage-driven charges, so that a fixture's total is its template's standing charges."""

META = {
    "environmentName": "fixture",
    "environmentClass": "mw1.small",
    "airflowVersion": "3.3.2",
    "schedulers": 2,
    "minWebservers": 2,
    "maxWebservers": 2,
    "minWorkers": 1,
    "maxWorkers": 10,
    "tasksPerWorker": 5,
}


def queue(**meta: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        "Metadata": {"openmwaa:environment": {**META, **meta}},
        "Properties": {},
    }


def task_definition(cpu: int, memory: int, arch: str = "X86_64", **env: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Cpu": str(cpu),
            "Memory": str(memory),
            "RuntimePlatform": {"CpuArchitecture": arch, "OperatingSystemFamily": "LINUX"},
            "ContainerDefinitions": [
                {"Name": "main", "Environment": [{"Name": k, "Value": v} for k, v in env.items()]}
            ],
        },
    }


def service(td: str, desired: int | None = None, **props: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"TaskDefinition": {"Ref": td}, **props}
    if desired is not None:
        properties["DesiredCount"] = desired
    if "CapacityProviderStrategy" not in props:
        properties.setdefault("LaunchType", "FARGATE")
    return {"Type": "AWS::ECS::Service", "Properties": properties}


def template(**resources: Any) -> dict[str, Any]:
    return {"Resources": {"Queue": queue(), **resources}}


def item(result: Any, fragment: str) -> Any:
    [found] = [i for i in result.items if fragment in i.name]
    return found


def test_prices_are_the_table_s() -> None:
    for key, value in PRICES.items():
        assert TABLE[key] == pytest.approx(value, rel=1e-12), key


def test_every_price_names_its_source_and_the_table_is_dated() -> None:
    assert TABLE.region == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", TABLE.read_on)
    for price in TABLE.prices.values():
        assert price.source.startswith("https://aws.amazon.com/"), price.key
        assert price.seen_at is None or price.seen_at.startswith("https://"), price.key
        assert price.seen_at is not None or "not re-read" in price.note, price.key


# ---------------------------------------------------------------------------------------------
# Compute


def test_arm_service_is_tasks_times_hours_times_its_size() -> None:
    t = template(Td=task_definition(512, 1024, "ARM64"), Svc=service("Td", desired=2))
    result = estimate(t, QUIET)
    # 2 tasks x 730 h x (0.5 x 0.03238 + 1 x 0.00356) = 1460 x 0.01975 = 28.835
    assert item(result, "Svc").monthly == pytest.approx(28.835)
    assert item(result, "Svc").quantity == 1460


def test_autoscaled_spot_worker_is_priced_at_its_minimum_and_extra_hours_on_spot() -> None:
    spot = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    t = template(
        Td=task_definition(1024, 2048, "ARM64"),
        Worker=service("Td", CapacityProviderStrategy=spot),
    )
    result = estimate(t, Usage(**{**QUIET.__dict__, "worker_hours": 10}))
    # min 1 worker x 730 h x (1 x 0.0100378 + 2 x 0.0011036) = 730 x 0.012245 = 8.93885
    assert item(result, "1 task(s)").monthly == pytest.approx(8.93885)
    # 10 extra worker-hours x 0.012245 = 0.12245
    assert item(result, "extra worker-hours, Spot").monthly == pytest.approx(0.12245)
    assert result.worker is not None
    assert result.worker.spot_hour == pytest.approx(0.012245)
    # on-demand: 0.03238 + 2 x 0.00356 = 0.0395
    assert result.worker.on_demand_hour == pytest.approx(0.0395)


def test_capacity_provider_base_is_on_demand_and_the_rest_splits_by_weight() -> None:
    strategy = [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]
    t = template(
        Td=task_definition(256, 512),
        Svc=service("Td", desired=3, CapacityProviderStrategy=strategy),
    )
    result = estimate(t, QUIET)
    # 3 tasks: 1 base on FARGATE, the other 2 split 1:3 -> 1.5 on-demand, 1.5 Spot.
    # on-demand: 1.5 x 730 x (0.25 x 0.04048 + 0.5 x 0.004445) = 1095 x 0.0123425 = 13.5150375
    assert item(result, "on-demand").monthly == pytest.approx(13.5150375)
    # Spot: 1095 x (0.25 x 0.0125488 + 0.5 x 0.00137795) = 1095 x 0.003826175 = 4.189661625
    assert item(result, "Spot").monthly == pytest.approx(4.189661625)


def test_paused_hours_run_no_task() -> None:
    t = template(Td=task_definition(1024, 2048), Svc=service("Td", desired=1))
    result = estimate(t, Usage(**{**QUIET.__dict__, "hours_on": 100}))
    # 1 task x 100 h x (0.04048 + 2 x 0.004445) = 100 x 0.04937 = 4.937
    assert item(result, "Svc").monthly == pytest.approx(4.937)


def test_scheduled_lambda_is_runs_times_budget_times_memory() -> None:
    t = template(
        Fn={
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "MemorySize": 128,
                "Architectures": ["arm64"],
                "Environment": {"Variables": {"INVOCATION_BUDGET_SECONDS": "50"}},
            },
        },
        Rule={
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": "rate(1 minute)",
                "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "T"}],
            },
        },
    )
    result = estimate(t, QUIET)
    # 43,800 runs x 50 s x 0.125 GB = 273,750 GB-s x 0.0000133334 = 3.65001825
    assert item(result, "runs").monthly == pytest.approx(3.65001825)
    # 0.0438 million requests x 0.20 = 0.00876
    assert item(result, "Fn: requests").monthly == pytest.approx(0.00876)


def test_the_pauser_stops_the_autoscaler_while_paused() -> None:
    schedule = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [{"Arn": {"Fn::GetAtt": ["Scaler", "Arn"]}, "Id": "T"}],
        },
    }
    scaler = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": "autoscaler.handler.handler",
            "MemorySize": 128,
            "Architectures": ["arm64"],
            "Environment": {
                "Variables": {
                    "INVOCATION_BUDGET_SECONDS": "50",
                    "SERVICES": json.dumps({"scheduler": "s", "worker": "w"}),
                }
            },
        },
    }
    pauser = {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "pauser.handler.handler"}}
    half = Usage(**{**QUIET.__dict__, "hours_on": 365})
    result = estimate(template(Scaler=scaler, Rule=schedule, Pauser=pauser), half)
    # on half the month: 21,900 runs x 50 s x 0.125 GB = 136,875 GB-s x 0.0000133334 = 1.8250091
    assert item(result, "runs").monthly == pytest.approx(1.8250091)
    # its 4 metrics and TasksBelowDesired of 2 services, for half the month: 6 x 0.5 x 0.30 = 0.90
    assert item(result, "autoscaler metrics").monthly == pytest.approx(0.90)
    assert "Pauser" in {n.resource for n in result.not_priced}
    without = estimate(template(Scaler=scaler, Rule=schedule), half)
    # without a pauser it runs all month: 273,750 GB-s x 0.0000133334 = 3.65001825
    assert item(without, "runs").monthly == pytest.approx(3.65001825)


# ---------------------------------------------------------------------------------------------
# Database


def aurora(min_capacity: float) -> dict[str, Any]:
    return {
        "Db": {
            "Type": "AWS::RDS::DBCluster",
            "Properties": {
                "ServerlessV2ScalingConfiguration": {"MinCapacity": min_capacity, "MaxCapacity": 4}
            },
        },
        "Writer": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {
                "DBClusterIdentifier": {"Ref": "Db"},
                "DBInstanceClass": "db.serverless",
            },
        },
    }


def test_aurora_at_min_zero_costs_storage_only_while_paused() -> None:
    usage = Usage(**{**QUIET.__dict__, "hours_on": 260, "db_storage_gb": 20, "db_io_millions": 5})
    result = estimate(template(**aurora(0)), usage)
    # on: 0.5 ACU (the floor of an active cluster) x 260 h x 0.12 = 15.60
    assert item(result, "while on").monthly == pytest.approx(15.60)
    # paused 470 h at 0 ACU = 0
    assert item(result, "while paused").monthly == 0
    # storage 20 GB x 0.10 = 2.00; I/O 5 million x 0.20 = 1.00
    assert item(result, "storage").monthly == pytest.approx(2.00)
    assert item(result, "I/O").monthly == pytest.approx(1.00)
    # total 15.60 + 0 + 2.00 + 1.00 = 18.60
    assert result.total == pytest.approx(18.60)


def test_aurora_above_min_zero_keeps_its_minimum_while_paused() -> None:
    result = estimate(template(**aurora(1)), Usage(**{**QUIET.__dict__, "hours_on": 260}))
    # on: 1 ACU x 260 x 0.12 = 31.20; paused: 1 ACU x 470 x 0.12 = 56.40
    assert item(result, "while on").monthly == pytest.approx(31.20)
    assert item(result, "while paused").monthly == pytest.approx(56.40)


# ---------------------------------------------------------------------------------------------
# Network


def test_nat_alb_and_endpoints() -> None:
    t = template(
        Eip={"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}},
        Nat={"Type": "AWS::EC2::NatGateway", "Properties": {}},
        Alb={
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {"Scheme": "internal", "Type": "application"},
        },
        Ecr={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcEndpointType": "Interface",
                "ServiceName": "com.amazonaws.us-east-1.ecr.api",
                "SubnetIds": ["subnet-a", "subnet-b"],
            },
        },
        S3={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {"VpcEndpointType": "Gateway", "ServiceName": "com.amazonaws.x.s3"},
        },
    )
    usage = Usage(**{**QUIET.__dict__, "nat_gb": 100, "alb_lcu": 1, "endpoint_gb": 10})
    result = estimate(t, usage)
    # NAT: 730 h x 0.045 = 32.85 (always on) and 100 GB x 0.045 = 4.50
    assert item(result, "NAT gateway, always on").monthly == pytest.approx(32.85)
    assert item(result, "data processed").monthly == pytest.approx(4.50)
    # the NAT's Elastic IP: 730 h x 0.005 = 3.65
    assert item(result, "public IPv4").monthly == pytest.approx(3.65)
    # ALB: 730 x 0.0225 = 16.425; 1 LCU x 730 x 0.008 = 5.84
    assert item(result, "load balancer, always on").monthly == pytest.approx(16.425)
    assert item(result, "1 LCU").monthly == pytest.approx(5.84)
    # interface endpoint in 2 subnets: 2 x 730 x 0.01 = 14.60; 10 GB x 0.01 = 0.10
    assert item(result, "in 2 AZ(s)").monthly == pytest.approx(14.60)
    assert item(result, "interface endpoint data").monthly == pytest.approx(0.10)
    # the S3 gateway endpoint is free
    assert item(result, "gateway endpoint (free)").monthly == 0
    # 32.85 + 4.50 + 3.65 + 16.425 + 5.84 + 14.60 + 0.10 = 77.965
    assert result.total == pytest.approx(77.965)


def endpoint(service: str, zones: int) -> dict[str, Any]:
    name = {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, f".{service}"]]}
    if not zones:
        return {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"ServiceName": name}}
    return {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcEndpointType": "Interface",
            "ServiceName": name,
            "SubnetIds": [{"Ref": f"Subnet{i}"} for i in range(zones)],
        },
    }


PRIVATE_SERVICES = (
    "ecr.api",
    "ecr.dkr",
    "logs",
    "monitoring",
    "sqs",
    "secretsmanager",
    "ecs",
    "sts",
    "codeartifact.api",
    "codeartifact.repositories",
)


def private_template(zones: int = 2, **resources: Any) -> dict[str, Any]:
    """Ten interface endpoints in ``zones`` AZs and the S3 and DynamoDB gateway endpoints."""
    endpoints = {f"E{i}": endpoint(s, zones) for i, s in enumerate(PRIVATE_SERVICES)}
    return template(**endpoints, S3=endpoint("s3", 0), Dynamo=endpoint("dynamodb", 0), **resources)


def test_endpoints_against_one_nat_and_one_per_zone() -> None:
    result = compare_endpoints(private_template())
    assert result is not None
    assert len(result.interface) == 10
    assert result.gateway == ("s3", "dynamodb")
    # 10 endpoints x 2 AZs x 730 h = 14,600 endpoint-AZ-hours x 0.01 = 146.00
    assert result.endpoint_az_hours == 14_600
    assert result.endpoints_fixed == pytest.approx(146.00)
    one, two = result.options
    # 1 NAT: 730 x 0.045 = 32.85 + its address 730 x 0.005 = 3.65 -> 36.50
    assert (one.gateways, one.fixed) == (1, pytest.approx(36.50))
    # break-even: (146.00 - 36.50) / (0.045 - 0.01) = 109.50 / 0.035 = 3,128.571 GB
    assert one.break_even_gb == pytest.approx(3128.5714, rel=1e-6)
    # 2 NATs: 73.00; (146.00 - 73.00) / 0.035 = 2,085.714 GB
    assert (two.gateways, two.fixed) == (2, pytest.approx(73.00))
    assert two.break_even_gb == pytest.approx(2085.7143, rel=1e-6)


def test_few_endpoints_are_cheaper_than_nat_at_any_traffic() -> None:
    result = compare_endpoints(template(Sqs=endpoint("sqs", 1)))
    assert result is not None
    # 1 endpoint x 1 AZ x 730 x 0.01 = 7.30, below one NAT's 36.50: cheaper at any traffic
    assert result.endpoints_fixed == pytest.approx(7.30)
    [only] = result.options  # one AZ: no "one per AZ" option
    assert only.break_even_gb == 0


def test_nat_cheaper_at_any_traffic_when_its_gb_is_no_dearer() -> None:
    prices = TABLE.with_values(nat__gb=0.01)
    result = compare_endpoints(private_template(), prices)
    assert result is not None
    # 146.00 fixed against 36.50, both at 0.01 a GB: the endpoints never catch up
    assert result.options[0].break_even_gb is None


def test_template_nat_gateways_are_the_nat_side() -> None:
    nat = {"Type": "AWS::EC2::NatGateway", "Properties": {}}
    result = compare_endpoints(private_template(NatA=nat, NatB=nat, NatC=nat))
    assert result is not None
    [option] = result.options
    # 3 x 36.50 = 109.50; (146.00 - 109.50) / 0.035 = 1,042.857 GB
    assert option.gateways == 3 and option.fixed == pytest.approx(109.50)
    assert option.break_even_gb == pytest.approx(1042.857, rel=1e-5)
    assert result.template_nat_gateways == 3


def test_no_interface_endpoint_no_comparison() -> None:
    assert compare_endpoints(template(S3=endpoint("s3", 0))) is None
    assert not is_private(template(S3=endpoint("s3", 0)))


def test_private_network_is_endpoints_without_nat_or_internet_gateway() -> None:
    assert is_private(private_template())
    igw = {"Type": "AWS::EC2::InternetGateway", "Properties": {}}
    assert not is_private(private_template(Igw=igw))


def test_private_mwaa_pays_for_its_private_routing_endpoints() -> None:
    a, _b, c = scenarios(private_template(), base=Usage(**{**QUIET.__dict__, "endpoint_gb": 2}))
    # MWAA: 730 x 0.49 = 357.70, plus 9 endpoints x 2 AZs x 730 h x 0.01 = 131.40, plus
    # 9 x 2 GB x 0.01 = 0.18 -> 489.28
    assert len(MWAA_PRIVATE_ROUTING) == 9
    assert a.mwaa == pytest.approx(489.28)
    assert c.mwaa == pytest.approx(489.28)
    # ours: 146.00 + 10 x 2 GB x 0.01 = 146.20
    assert a.ours == pytest.approx(146.20)
    public = scenarios(template(Nat={"Type": "AWS::EC2::NatGateway", "Properties": {}}), base=QUIET)
    assert public[0].mwaa == pytest.approx(357.70)


def test_codeartifact_storage_and_requests() -> None:
    t = template(
        Domain={"Type": "AWS::CodeArtifact::Domain", "Properties": {}},
        Store={"Type": "AWS::CodeArtifact::Repository", "Properties": {}},
        Pypi={"Type": "AWS::CodeArtifact::Repository", "Properties": {}},
    )
    usage = Usage(**{**QUIET.__dict__, "codeartifact_gb": 3, "codeartifact_requests": 50_000})
    result = estimate(t, usage)
    # 3 GB x 0.05 = 0.15; 50,000 requests = 5 x 10,000 x 0.05 = 0.25
    assert item(result, "CodeArtifact: 1 domain(s), storage").monthly == pytest.approx(0.15)
    assert item(result, "2 repositories, requests").monthly == pytest.approx(0.25)
    assert not result.not_priced
    assert result.total == pytest.approx(0.40)


# ---------------------------------------------------------------------------------------------
# Observability and the rest


def test_metrics_insights_alarms_dashboard_secrets_and_keys() -> None:
    allow = json.dumps(
        {"metrics": ["SchedulerHeartbeat", "DAGDurationSuccess", "TaskInstanceDuration"]}
    )
    t = template(
        Cluster={
            "Type": "AWS::ECS::Cluster",
            "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
        },
        Td=task_definition(256, 512, OPENMWAA_METRICS=allow),
        Svc=service("Td", desired=1, Cluster={"Ref": "Cluster"}),
        Math={
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Metrics": [
                    {"Id": "a", "MetricStat": {"Period": 60}},
                    {"Id": "b", "MetricStat": {"Period": 60}},
                    {"Id": "e", "Expression": "MAX([a, b])"},
                ]
            },
        },
        Simple={"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 300}},
        Board={"Type": "AWS::CloudWatch::Dashboard", "Properties": {}},
        S1={"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        S2={"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        Key={"Type": "AWS::KMS::Key", "Properties": {}},
    )
    result = estimate(t, Usage(**{**QUIET.__dict__, "dags": 4, "tasks_per_dag": 5}))
    # Airflow: SchedulerHeartbeat 1 + DAGDurationSuccess 1 per DAG (4) + TaskInstanceDuration
    # 1 per task (4 x 5 = 20) = 25 series x 0.30 = 7.50
    assert item(result, "25 series").monthly == pytest.approx(7.50)
    # one relay task calling once a minute: 43,800 calls = 43.8 thousand x 0.01 = 0.438
    assert item(result, "PutMetricData").monthly == pytest.approx(0.438)
    # Container Insights: 10 (cluster) + 13 x 1 service + 8 x 1 family = 31 x 0.30 = 9.30
    assert item(result, "Container Insights").monthly == pytest.approx(9.30)
    # alarms: 2 metrics (the expression is free) + 1 = 3 x 0.10 = 0.30
    assert item(result, "alarms").monthly == pytest.approx(0.30)
    assert item(result, "dashboards").monthly == pytest.approx(3.00)
    # 2 secrets x 0.40 = 0.80; 1 key x 1.00
    assert item(result, "Secrets Manager").monthly == pytest.approx(0.80)
    assert item(result, "KMS").monthly == pytest.approx(1.00)


def test_container_insights_off_costs_nothing() -> None:
    t = template(
        Cluster={"Type": "AWS::ECS::Cluster", "Properties": {}},
        Td=task_definition(256, 512),
        Svc=service("Td", desired=1, Cluster={"Ref": "Cluster"}),
    )
    result = estimate(t, QUIET)
    assert not [i for i in result.items if "Container Insights" in i.name]
    assert ("AWS::ECS::Cluster", 1) in result.free


def test_unpriced_resources_are_listed_with_a_reason_and_free_ones_counted() -> None:
    t = template(
        Odd={"Type": "AWS::Foo::Bar", "Properties": {}},
        Table={"Type": "AWS::DynamoDB::Table", "Properties": {}},
        Role={"Type": "AWS::IAM::Role", "Properties": {}},
    )
    result = estimate(t, QUIET)
    reasons = {n.resource: n.reason for n in result.not_priced}
    assert "no price rule" in reasons["Odd"]
    assert "on-demand requests" in reasons["Table"]
    assert ("AWS::IAM::Role", 1) in result.free


def test_nothing_in_the_bundled_template_is_dropped(default_template: Any) -> None:
    t = default_template.to_json()
    result = estimate(t)
    accounted = {r for i in result.items for r in i.resources}
    accounted |= {n.resource for n in result.not_priced}
    free = dict(result.free)
    for logical_id, resource in t["Resources"].items():
        assert logical_id in accounted or resource["Type"] in free, logical_id


def test_private_network_template_is_priced_whole_and_compared_with_nat() -> None:
    from tests.conftest import template_of

    t = template_of(private_network=True).to_json()
    result = estimate(t)
    accounted = {r for i in result.items for r in i.resources}
    accounted |= {n.resource for n in result.not_priced}
    free = dict(result.free)
    for logical_id, resource in t["Resources"].items():
        assert logical_id in accounted or resource["Type"] in free, logical_id
    assert is_private(t)
    network = compare_endpoints(t)
    assert network is not None and network.template_nat_gateways == 0
    assert {"s3", "dynamodb"} <= set(network.gateway)
    # every interface endpoint is in the environment's 2 AZs: 2 x 730 x 0.01 = 14.60 each
    assert {zones for _service, zones in network.interface} == {2}
    assert network.endpoints_fixed == pytest.approx(14.60 * len(network.interface))


def test_bad_usage_names_the_field() -> None:
    with pytest.raises(ValueError, match="log_gb"):
        Usage(log_gb=-1)
    with pytest.raises(ValueError, match="hours_on"):
        Usage(hours_on=800)


def test_not_a_template() -> None:
    with pytest.raises(TemplateError, match="no Resources"):
        estimate({"AWSTemplateFormatVersion": "2010-09-09"})


# ---------------------------------------------------------------------------------------------
# MWAA and the scenarios


def test_mwaa_small_always_on_with_ten_extra_worker_hours() -> None:
    result = mwaa_monthly("mw1.small", hours=730, extra_worker_hours=10, db_storage_gb=10)
    # 730 h x 0.49 = 357.70; 10 worker-hours x 0.055 = 0.55; 10 GB x 0.10 = 1.00 -> 359.25
    assert result.total == pytest.approx(359.25)


def test_mwaa_extra_schedulers_and_web_servers_bill_every_hour() -> None:
    result = mwaa_monthly("mw1.medium", extra_schedulers=1, extra_webservers=2)
    # 730 x 0.74 = 540.20; 1 x 730 x 0.11 = 80.30; 2 x 730 x 0.055 = 80.30 -> 700.80
    assert result.total == pytest.approx(700.80)


def test_mwaa_class_without_a_verified_price_is_refused() -> None:
    with pytest.raises(ValueError, match=r"mw1\.xlarge"):
        mwaa_monthly("mw1.xlarge")
    with pytest.raises(ValueError, match="unknown"):
        mwaa_monthly("mw1.huge")


def test_scenarios_on_a_small_template() -> None:
    spot = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    t = template(
        Td=task_definition(512, 1024, "ARM64"),
        Svc=service("Td", desired=2),
        WorkerTd=task_definition(1024, 2048, "ARM64"),
        Worker=service("WorkerTd", CapacityProviderStrategy=spot),
    )
    a, b, c = scenarios(t, base=QUIET)
    # (a) 28.835 (the service) + 8.93885 (one Spot worker) = 37.77385; MWAA 357.70
    assert a.ours == pytest.approx(37.77385)
    assert a.mwaa == pytest.approx(357.70)
    assert a.met  # 0.11 <= 0.5
    # (b) 0.012245 / 0.055 = 0.22
    assert b is not None
    assert round(b.ratio, 2) == 0.22
    assert b.met
    # (c) on 12 h x 5 days x 730/168 = 260.714 h: (2 x 0.01975 + 0.012245) x 260.714 = 13.4902
    assert abs(DEV_HOURS_ON - 260.714) < 1e-3
    assert c.ours == pytest.approx((2 * 0.01975 + 0.012245) * 60 * 730 / 168)
    assert c.mwaa == pytest.approx(357.70)
    assert round(c.ratio, 2) == 0.04


# ---------------------------------------------------------------------------------------------
# The command


def run_cli(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cost.register(parser.add_subparsers())
    args = parser.parse_args(["cost", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = cost.run(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, document: Any, name: str = "T.template.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_cli_last_line_on_the_bundled_app(tmp_path: Path, default_template: Any) -> None:
    code, out, err = run_cli(write(tmp_path, default_template.to_json()))
    assert code == 0, err
    lines = out.rstrip("\n").splitlines()
    assert re.fullmatch(r"openmwaa/MWAA monthly: \d+\.\d\d", lines[-1])
    for goal in ("<= 0.50", "<= 0.30", "<= 0.20"):
        assert goal in out
    assert "(a) Always on" in out and "(b) One more worker-hour" in out
    assert "(c) Development" in out and "260.7 hours on" in out


def test_cli_usage_options_price_one_comparison(tmp_path: Path) -> None:
    t = template(Td=task_definition(512, 1024, "ARM64"), Svc=service("Td", desired=2))
    code, out, _ = run_cli(write(tmp_path, t), "--hours-on", "100", "--log-gb", "0")
    assert code == 0
    assert "Your usage: 100 hours on" in out
    assert "(a)" not in out
    assert re.fullmatch(r"openmwaa/MWAA monthly: \d+\.\d\d", out.splitlines()[-1])


def test_cli_spot_discount_reprices_spot(tmp_path: Path) -> None:
    t = template(Td=task_definition(1024, 2048, "ARM64"), Worker=service("Td"))
    code, out, _ = run_cli(write(tmp_path, t), "--json", "--spot-discount", "0.5")
    assert code == 0
    [doc] = json.loads(out)
    [b] = [c for c in doc["comparisons"] if c["key"] == "b"]
    # half of on-demand: (0.03238 + 2 x 0.00356) / 2 = 0.01975
    assert b["openmwaa"] == pytest.approx(0.01975)
    assert b["mwaa"] == pytest.approx(0.055)


def test_cli_without_an_mwaa_price_prints_the_estimate_alone(tmp_path: Path) -> None:
    t = {"Resources": {"Queue": queue(environmentClass="mw1.xlarge")}}
    code, out, _ = run_cli(write(tmp_path, t))
    assert code == 0
    assert "no MWAA comparison" in out
    assert out.splitlines()[-1] == "openmwaa/MWAA monthly: n/a"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "is not a CloudFormation template"),
        ([1, 2], "not a JSON object"),
        ({"Outputs": {}}, "no Resources"),
        ({"Resources": {"R": {"Type": "AWS::IAM::Role"}}}, "no openmwaa environment"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, document: Any, message: str) -> None:
    path = tmp_path / "bad.template.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    code, out, err = run_cli(str(path))
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("openmwaa cost: error: ") and message in err


def test_cli_missing_template_and_empty_cdk_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(str(tmp_path / "nope.json"))
    assert code == 2 and "no such template" in err
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli()
    assert code == 2 and "make synth" in err and len(err.splitlines()) == 1


def test_cli_default_reads_cdk_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cdk.out").mkdir()
    t = template(Td=task_definition(512, 1024, "ARM64"), Svc=service("Td", desired=2))
    write(tmp_path / "cdk.out", t, "Stack.template.json")
    write(
        tmp_path / "cdk.out",
        {"Resources": {"R": {"Type": "AWS::IAM::Role"}}},
        "Other.template.json",
    )
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli()
    assert code == 0
    assert "Stack.template.json" in out and "Other.template.json" not in out


def test_cli_brief_prints_a_and_the_endpoints_against_nat(tmp_path: Path) -> None:
    code, out, err = run_cli(write(tmp_path, private_template()), "--brief")
    assert code == 0, err
    assert "(a) Always on" in out and "(c)" not in out and "Summary" not in out
    text = " ".join(out.split())
    assert "10 interface endpoints in 2 AZ(s)" in text
    assert "14,600 endpoint-AZ-hours x $0.01 = $146.00 a month, plus $0.01 a GB" in text
    assert "1 NAT gateway and its public IPv4 address" in text and "= $36.50 a month" in text
    assert "NAT is cheaper at any traffic below 3,129 GB a month" in text
    assert "NAT is cheaper at any traffic below 2,086 GB a month" in text
    assert "MWAA private routing: 9 interface endpoints" in text
    assert re.fullmatch(r"openmwaa/MWAA monthly: \d+\.\d\d", out.splitlines()[-1])


def test_cli_json_carries_the_endpoints_against_nat(tmp_path: Path) -> None:
    code, out, _ = run_cli(write(tmp_path, private_template()), "--json", "--endpoint-gb", "0")
    assert code == 0
    [doc] = json.loads(out)
    network = doc["endpoints_vs_nat"]
    assert network["endpoints_monthly"] == pytest.approx(146.00)
    assert [n["break_even_gb"] for n in network["nat"]] == [
        pytest.approx(3128.57),
        pytest.approx(2085.71),
    ]
    code, out, _ = run_cli(write(tmp_path, template()), "--json")
    assert json.loads(out)[0]["endpoints_vs_nat"] is None


def test_cli_bad_usage_value_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run_cli(write(tmp_path, template()), "--log-gb", "-3")
    assert code == 2 and "log_gb" in err and len(err.splitlines()) == 1
    code, _, err = run_cli(write(tmp_path, template()), "--spot-discount", "1.5")
    assert code == 2 and "spot discount" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# The docs


def test_docs_print_the_price_table_and_the_usage() -> None:
    doc = (REPO_ROOT / "docs" / "cost.md").read_text()
    assert price_table_markdown() in doc
    assert usage_table_markdown() in doc


def test_docs_name_mwaa_s_private_routing_endpoints() -> None:
    doc = (REPO_ROOT / "docs" / "cost.md").read_text()
    for service in MWAA_PRIVATE_ROUTING:
        assert f"`{service}`" in doc, service
    assert "private_network=true" in doc and "break-even" in doc


def test_docs_name_every_lever() -> None:
    doc = (REPO_ROOT / "docs" / "cost.md").read_text()
    for lever in (
        "cpu_architecture",
        "worker_fargate_spot",
        "container_insights",
        "flow_log_retention",
        "nat_gateways",
        "private_network",
        "pypi_mirror",
        "S3 gateway endpoint",
        "pause",
        "metrics_allow_list",
        "environment_class",
    ):
        assert lever in doc, lever
