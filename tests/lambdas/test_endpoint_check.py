"""The VPC endpoint check (`vpc_endpoints="verify"`): its pure core, its handler against moto
EC2 with CloudFormation's response captured by a local HTTP server, and its construct."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from botocore.stub import Stubber
from endpoint_check import core, handler
from endpoint_check.core import EventError, Need
from moto import mock_aws

from openmwaa.endpoint_check import RESOURCE_TYPE, EndpointCheck, endpoint_service_name

REGION = "us-east-1"
SQS = Need(endpoint_service_name(REGION, "sqs"), "Interface")
LOGS = Need(endpoint_service_name(REGION, "logs"), "Interface")
S3 = Need(endpoint_service_name(REGION, "s3"), "Gateway")
DYNAMODB = Need(endpoint_service_name(REGION, "dynamodb"), "Gateway")


def endpoint(
    need: Need,
    *,
    state: str = "available",
    private_dns: bool = True,
    route_tables: tuple[str, ...] = (),
    kind: str | None = None,
) -> dict[str, Any]:
    """One entry of DescribeVpcEndpoints' VpcEndpoints, as EC2 answers it."""
    return {
        "VpcEndpointId": f"vpce-{abs(hash((need, state, route_tables))) % 10**8:08d}",
        "VpcEndpointType": kind or need.kind,
        "VpcId": "vpc-123",
        "ServiceName": need.name,
        "State": state,
        "PrivateDnsEnabled": private_dns,
        "RouteTableIds": list(route_tables),
    }


def event(
    request_type: str = "Create",
    *,
    needs: tuple[Need, ...] = (SQS, S3),
    vpc_id: str = "vpc-123",
    route_tables: tuple[str, ...] | None = None,
    url: str = "http://127.0.0.1:9/response",
) -> dict[str, Any]:
    """A CloudFormation custom resource event, with the properties the construct writes."""
    properties: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:check",
        "Region": REGION,
        "VpcId": vpc_id,
        "Services": [{"Name": need.name, "Kind": need.kind} for need in needs],
    }
    if route_tables is not None:
        properties["RouteTableIds"] = list(route_tables)
    found: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Env/abc",
        "RequestId": "request-1",
        "LogicalResourceId": "EndpointCheck",
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": properties,
    }
    if request_type != "Create":
        found["PhysicalResourceId"] = f"endpoint-check-{vpc_id}"
    return found


# The core


def test_an_available_interface_endpoint_with_private_dns_meets_its_need() -> None:
    assert core.missing([SQS], [endpoint(SQS)], []) == []


@pytest.mark.parametrize(
    "found",
    [
        [],
        [endpoint(SQS, private_dns=False)],
        [endpoint(SQS, state="pending")],
        [endpoint(SQS, state="rejected")],
        [endpoint(LOGS)],
        [endpoint(SQS, kind="Gateway")],
    ],
    ids=["none", "private-dns-off", "pending", "rejected", "other-service", "other-kind"],
)
def test_an_interface_need_is_unmet_without_a_usable_endpoint(found: list[dict[str, Any]]) -> None:
    assert core.missing([SQS], found, []) == [SQS]


def test_one_usable_endpoint_among_unusable_ones_meets_the_need() -> None:
    found = [endpoint(SQS, private_dns=False), endpoint(SQS, state="deleted"), endpoint(SQS)]
    assert core.missing([SQS], found, []) == []


def test_the_state_is_compared_without_case() -> None:
    assert core.missing([SQS], [endpoint(SQS, state="Available")], []) == []


def test_a_gateway_need_requires_every_given_route_table() -> None:
    on_one = [endpoint(S3, route_tables=("rtb-1",))]
    assert core.missing([S3], on_one, ["rtb-1", "rtb-2"]) == [S3]
    on_both = [endpoint(S3, route_tables=("rtb-1", "rtb-2", "rtb-other"))]
    assert core.missing([S3], on_both, ["rtb-1", "rtb-2"]) == []


def test_gateway_endpoints_of_one_service_may_share_the_route_tables() -> None:
    split = [endpoint(S3, route_tables=("rtb-1",)), endpoint(S3, route_tables=("rtb-2",))]
    assert core.missing([S3], split, ["rtb-1", "rtb-2"]) == []


def test_an_unavailable_gateway_endpoint_does_not_count_for_its_route_tables() -> None:
    found = [
        endpoint(S3, route_tables=("rtb-1",)),
        endpoint(S3, state="deleting", route_tables=("rtb-2",)),
    ]
    assert core.missing([S3], found, ["rtb-1", "rtb-2"]) == [S3]


def test_without_route_tables_one_available_gateway_endpoint_is_enough() -> None:
    assert core.missing([S3], [endpoint(S3)], []) == []
    assert core.missing([S3], [endpoint(S3, state="pending")], []) == [S3]


def test_an_interface_endpoint_does_not_meet_a_gateway_need() -> None:
    assert core.missing([S3], [endpoint(S3, kind="Interface")], []) == [S3]


def test_every_unmet_need_is_returned_in_order() -> None:
    needs = [SQS, S3, LOGS, DYNAMODB]
    found = [endpoint(LOGS), endpoint(DYNAMODB, route_tables=("rtb-1",))]
    assert core.missing(needs, found, ["rtb-1"]) == [SQS, S3]


def test_the_failure_message_names_each_missing_endpoint_and_the_other_modes() -> None:
    message = core.failure_message("vpc-123", [SQS, S3], [])
    assert message == (
        "private_network: VPC vpc-123 has no usable endpoint for: "
        "com.amazonaws.us-east-1.sqs (Interface, private DNS on), "
        "com.amazonaws.us-east-1.s3 (Gateway); create them, or set "
        'vpc_endpoints="create" (the environment creates them) or "unchecked" (they are '
        "reached another way)"
    )


def test_the_failure_message_names_the_route_tables_of_a_gateway_need() -> None:
    message = core.failure_message("vpc-123", [S3], ["rtb-1", "rtb-2"])
    assert "com.amazonaws.us-east-1.s3 (Gateway, on route tables rtb-1, rtb-2)" in message


def test_parse_request_reads_the_construct_properties() -> None:
    request = core.parse_request(event(route_tables=("rtb-1", "rtb-2", "rtb-1")))
    assert request.request_type == "Create"
    assert request.vpc_id == "vpc-123"
    assert request.needs == (SQS, S3)
    assert request.route_tables == ("rtb-1", "rtb-2")


def test_parse_request_without_route_tables_checks_none() -> None:
    assert core.parse_request(event()).route_tables == ()


def _without(key: str) -> dict[str, Any]:
    found = event()
    del found["ResourceProperties"][key]
    return found


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ([], "not a JSON object"),
        ({**event(), "RequestType": "Replace"}, "RequestType 'Replace'"),
        ({**event(), "ResourceProperties": None}, "ResourceProperties is missing"),
        (_without("VpcId"), "ResourceProperties.VpcId"),
        (_without("Services"), "ResourceProperties.Services"),
        (
            {**event(), "ResourceProperties": {"VpcId": "vpc-1", "Services": ["sqs"]}},
            "Services[0] is not an object",
        ),
        (
            {
                **event(),
                "ResourceProperties": {
                    "VpcId": "vpc-1",
                    "Services": [{"Name": SQS.name, "Kind": "GatewayLoadBalancer"}],
                },
            },
            "Services[0].Kind 'GatewayLoadBalancer'",
        ),
        (
            {
                **event(),
                "ResourceProperties": {"VpcId": "vpc-1", "Services": [{"Kind": "Interface"}]},
            },
            "Services[0].Name",
        ),
        (
            {
                **event(),
                "ResourceProperties": {"VpcId": "vpc-1", "Services": [], "RouteTableIds": "rtb"},
            },
            "RouteTableIds",
        ),
    ],
)
def test_parse_request_names_what_is_wrong(bad: Any, named: str) -> None:
    with pytest.raises(EventError, match=named.replace("[", r"\[").replace("]", r"\]")):
        core.parse_request(bad)


def physical_id(sent: dict[str, Any]) -> str:
    target = core.response_target(sent)
    assert target is not None
    return target.physical_id


def test_the_physical_id_is_stable_for_a_vpc() -> None:
    assert physical_id(event("Create")) == "endpoint-check-vpc-123"
    update = {**event("Update", vpc_id="vpc-456"), "PhysicalResourceId": "endpoint-check-vpc-1"}
    assert physical_id(update) == "endpoint-check-vpc-456"


def test_a_delete_answers_with_the_physical_id_cloudformation_holds() -> None:
    delete = {**event("Delete"), "PhysicalResourceId": "endpoint-check-invalid"}
    assert physical_id(delete) == "endpoint-check-invalid"


def test_a_malformed_create_still_has_a_physical_id() -> None:
    target = core.response_target({"ResponseURL": "http://x", "RequestType": "Create"})
    assert target is not None
    assert target.physical_id == "endpoint-check-invalid"


def test_an_event_without_a_response_url_has_no_target() -> None:
    assert core.response_target({"RequestType": "Create"}) is None
    assert core.response_target("not an event") is None


def test_the_response_body_follows_the_custom_resource_contract() -> None:
    target = core.response_target(event())
    assert target is not None
    body = json.loads(core.response(target, success=False, reason="x" * 5000))
    assert body["Status"] == "FAILED"
    assert body["PhysicalResourceId"] == "endpoint-check-vpc-123"
    assert body["StackId"].endswith("stack/Env/abc")
    assert body["RequestId"] == "request-1"
    assert body["LogicalResourceId"] == "EndpointCheck"
    assert len(body["Reason"]) == core.MAX_REASON_CHARACTERS
    assert len(json.dumps(body).encode()) < 4096


# The handler, against moto EC2 and a local stand-in for CloudFormation's response URL


class CloudFormationUrl(BaseHTTPRequestHandler):
    """Records every PUT: its headers and JSON body."""

    received: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def response_url() -> Iterator[str]:
    CloudFormationUrl.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CloudFormationUrl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/presigned?signature=abc"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Vpc:
    ec2: Any
    vpc_id: str
    subnets: list[str]
    route_tables: list[str]
    created: list[str] = field(default_factory=list)

    def interface(self, service: str, *, private_dns: bool = True) -> None:
        answer = self.ec2.create_vpc_endpoint(
            VpcId=self.vpc_id,
            ServiceName=endpoint_service_name(REGION, service),
            VpcEndpointType="Interface",
            SubnetIds=self.subnets,
            PrivateDnsEnabled=private_dns,
        )
        self.created.append(answer["VpcEndpoint"]["VpcEndpointId"])

    def gateway(self, service: str, route_tables: list[str]) -> None:
        answer = self.ec2.create_vpc_endpoint(
            VpcId=self.vpc_id,
            ServiceName=endpoint_service_name(REGION, service),
            VpcEndpointType="Gateway",
            RouteTableIds=route_tables,
        )
        self.created.append(answer["VpcEndpoint"]["VpcEndpointId"])


@pytest.fixture
def vpc(monkeypatch: pytest.MonkeyPatch) -> Iterator[Vpc]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(handler, "_CLIENTS", {})
    with mock_aws():
        client = boto3.client("ec2", region_name=REGION)
        vpc_id = client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets, tables = [], []
        for index, zone in enumerate(("us-east-1a", "us-east-1b")):
            subnet = client.create_subnet(
                VpcId=vpc_id, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone
            )["Subnet"]["SubnetId"]
            table = client.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
            client.associate_route_table(RouteTableId=table, SubnetId=subnet)
            subnets.append(subnet)
            tables.append(table)
        # Another VPC's endpoints never count.
        other = client.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        client.create_vpc_endpoint(
            VpcId=other,
            ServiceName=endpoint_service_name(REGION, "sqs"),
            VpcEndpointType="Interface",
            PrivateDnsEnabled=True,
        )
        yield Vpc(client, vpc_id, subnets, tables)


def answers() -> list[dict[str, Any]]:
    return [request["body"] for request in CloudFormationUrl.received]


def test_missing_endpoints_fail_the_deploy_naming_each(vpc: Vpc, response_url: str) -> None:
    vpc.interface("logs", private_dns=False)
    vpc.gateway("s3", vpc.route_tables[:1])
    vpc.interface("ecr.api")
    needs = (SQS, LOGS, Need(endpoint_service_name(REGION, "ecr.api"), "Interface"), S3)
    sent = event(
        vpc_id=vpc.vpc_id, needs=needs, route_tables=tuple(vpc.route_tables), url=response_url
    )

    result = handler.run(sent, ec2=vpc.ec2)

    [answer] = answers()
    assert answer["Status"] == "FAILED" == result["Status"]
    reason = answer["Reason"]
    assert reason.startswith(f"private_network: VPC {vpc.vpc_id} has no usable endpoint for: ")
    assert "com.amazonaws.us-east-1.sqs (Interface, private DNS on)" in reason
    assert "com.amazonaws.us-east-1.logs (Interface, private DNS on)" in reason
    assert "com.amazonaws.us-east-1.s3 (Gateway, on route tables " in reason
    assert "ecr.api" not in reason
    assert 'vpc_endpoints="create"' in reason and '"unchecked"' in reason
    assert answer["PhysicalResourceId"] == f"endpoint-check-{vpc.vpc_id}"
    assert answer["RequestId"] == "request-1"
    assert answer["LogicalResourceId"] == "EndpointCheck"


def test_present_endpoints_let_the_deploy_go_on(vpc: Vpc, response_url: str) -> None:
    vpc.interface("sqs")
    vpc.interface("logs")
    vpc.gateway("s3", vpc.route_tables)
    vpc.gateway("dynamodb", vpc.route_tables[:1])
    vpc.gateway("dynamodb", vpc.route_tables[1:])
    sent = event(
        "Update",
        vpc_id=vpc.vpc_id,
        needs=(SQS, LOGS, S3, DYNAMODB),
        route_tables=tuple(vpc.route_tables),
        url=response_url,
    )

    assert handler.run(sent, ec2=vpc.ec2)["Status"] == "SUCCESS"

    [answer] = answers()
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == f"endpoint-check-{vpc.vpc_id}"
    assert answer["Data"] == {}


def test_the_response_is_a_put_with_an_empty_content_type(vpc: Vpc, response_url: str) -> None:
    handler.run(event(vpc_id=vpc.vpc_id, url=response_url), ec2=vpc.ec2)
    [request] = CloudFormationUrl.received
    assert request["path"] == "/presigned?signature=abc"
    assert request["content_type"] == ""


class NoEc2:
    """A client that must not be called."""

    def describe_vpc_endpoints(self, **_: Any) -> Any:
        raise AssertionError("a Delete must not read the endpoints")


def test_delete_succeeds_without_checking(response_url: str) -> None:
    sent = {**event("Delete", url=response_url), "PhysicalResourceId": "endpoint-check-vpc-9"}
    sent["ResourceProperties"] = {"VpcId": 42}

    assert handler.run(sent, ec2=NoEc2())["Status"] == "SUCCESS"

    [answer] = answers()
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "endpoint-check-vpc-9"


def test_a_malformed_event_fails_with_a_clear_reason(response_url: str) -> None:
    sent = event(url=response_url)
    del sent["ResourceProperties"]["Services"]

    assert handler.run(sent, ec2=NoEc2())["Status"] == "FAILED"

    [answer] = answers()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "endpoint check: malformed event: ResourceProperties.Services is missing or not a list"
    )


def test_an_event_without_a_response_url_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = event()
    del sent["ResponseURL"]
    assert handler.run(sent, ec2=NoEc2())["Status"] == "FAILED"
    assert "no ResponseURL" in caplog.text


def test_a_refused_call_fails_with_its_code_and_message(vpc: Vpc, response_url: str) -> None:
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_vpc_endpoints",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            http_status_code=403,
        )
        handler.run(event(vpc_id=vpc.vpc_id, url=response_url), ec2=client)

    [answer] = answers()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        f"endpoint check: ec2:DescribeVpcEndpoints {vpc.vpc_id}: "
        "UnauthorizedOperation: You are not authorized to perform this operation."
    )


THROTTLED = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
    b"<Message>Request limit exceeded.</Message></Error></Errors>"
    b"<RequestID>r-1</RequestID></Response>"
)


class Body:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def throttle(client: Any, times: int) -> list[int]:
    """Answer the client's first `times` DescribeVpcEndpoints with EC2's throttling error;
    returns the list the attempts are counted in."""
    attempts: list[int] = []

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > times:
            return None
        return AWSResponse(request.url, 503, {}, Body(THROTTLED))

    client.meta.events.register("before-send.ec2.DescribeVpcEndpoints", answer)
    return attempts


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.mark.usefixtures("no_backoff")
def test_throttling_is_retried_by_botocore(vpc: Vpc, response_url: str) -> None:
    vpc.interface("sqs")
    vpc.gateway("s3", vpc.route_tables)
    client = handler._client("ec2")
    attempts = throttle(client, 2)

    handler.run(event(vpc_id=vpc.vpc_id, url=response_url), ec2=client)

    assert len(attempts) == 3
    assert [answer["Status"] for answer in answers()] == ["SUCCESS"]


@pytest.mark.usefixtures("no_backoff")
def test_throttling_past_the_retries_fails_with_the_error(vpc: Vpc, response_url: str) -> None:
    client = handler._client("ec2")
    attempts = throttle(client, 100)

    handler.run(event(vpc_id=vpc.vpc_id, url=response_url), ec2=client)

    assert len(attempts) == client.meta.config.retries["total_max_attempts"] > 1
    [answer] = answers()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        f"endpoint check: ec2:DescribeVpcEndpoints {vpc.vpc_id}: "
        "RequestLimitExceeded: Request limit exceeded."
    )


def test_any_other_error_is_answered_too(response_url: str) -> None:
    class Broken:
        def describe_vpc_endpoints(self, **_: Any) -> Any:
            return {"VpcEndpoints": "not a list"}

    handler.run(event(url=response_url), ec2=Broken())

    [answer] = answers()
    assert answer["Status"] == "FAILED"
    assert "no VpcEndpoints in the answer" in answer["Reason"]


def test_every_page_is_read(response_url: str) -> None:
    client = boto3.client(
        "ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    expected = {"Filters": [{"Name": "vpc-id", "Values": ["vpc-123"]}]}
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_vpc_endpoints",
            {"VpcEndpoints": [endpoint(S3)], "NextToken": "page-2"},
            expected,
        )
        stubber.add_response(
            "describe_vpc_endpoints",
            {"VpcEndpoints": [endpoint(SQS)]},
            {**expected, "NextToken": "page-2"},
        )
        handler.run(event(url=response_url), ec2=client)
        stubber.assert_no_pending_responses()

    assert [answer["Status"] for answer in answers()] == ["SUCCESS"]


def test_running_out_of_time_answers_before_the_time_out(response_url: str) -> None:
    handler.run(
        event(url=response_url), ec2=NoEc2(), remaining_ms=lambda: handler.TIME_MARGIN_MS - 1
    )
    [answer] = answers()
    assert answer["Status"] == "FAILED"
    assert "ran out of time" in answer["Reason"]


def test_a_response_that_cannot_be_sent_raises_so_lambda_retries(vpc: Vpc) -> None:
    def refuse(url: str, body: bytes) -> None:
        raise OSError("connection refused")

    with pytest.raises(OSError, match="connection refused"):
        handler.run(event(vpc_id=vpc.vpc_id), ec2=vpc.ec2, send=refuse)


def test_the_lambda_entry_point_uses_the_function_time_left(vpc: Vpc, response_url: str) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 300_000

    vpc.interface("sqs")
    vpc.gateway("s3", vpc.route_tables)
    sent = event(vpc_id=vpc.vpc_id, route_tables=tuple(vpc.route_tables), url=response_url)

    assert handler.handler(sent, Context())["Status"] == "SUCCESS"
    assert [answer["Status"] for answer in answers()] == ["SUCCESS"]


# The construct

ISOLATED = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
SERVICES = (("sqs", "Interface"), ("s3", "Gateway"))


def check_stack(
    *, route_tables: bool = True, kms_key: bool = False, new_vpc: bool = False
) -> tuple[cdk.Stack, EndpointCheck]:
    app = cdk.App()
    stack = cdk.Stack(app, "Env", env=cdk.Environment(account="123456789012", region=REGION))
    vpc: ec2.IVpc
    if new_vpc:
        vpc = ec2.Vpc(
            stack,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
                )
            ],
        )
    else:
        vpc = ec2.Vpc.from_vpc_attributes(
            stack,
            "Vpc",
            vpc_id="vpc-123",
            availability_zones=["us-east-1a", "us-east-1b"],
            isolated_subnet_ids=["subnet-1", "subnet-2"],
            isolated_subnet_route_table_ids=["rtb-1", "rtb-1"] if route_tables else None,
        )
    check = EndpointCheck(
        stack,
        "EndpointCheck",
        vpc=vpc,
        subnets=ISOLATED,
        services=SERVICES,
        kms_key=kms.Key(stack, "Key", enable_key_rotation=True) if kms_key else None,
        log_retention=logs.RetentionDays.ONE_MONTH,
    )
    return stack, check


def test_the_function_runs_outside_the_vpc() -> None:
    stack, _ = check_stack()
    template = Template.from_stack(stack)
    [function] = template.find_resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    assert "VpcConfig" not in props
    assert props["Handler"] == "endpoint_check.handler.handler"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 300


def test_the_function_may_only_describe_vpc_endpoints_and_write_its_logs() -> None:
    stack, _ = check_stack()
    template = Template.from_stack(stack)
    [policy] = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        action
        for statement in statements
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert actions == {"ec2:DescribeVpcEndpoints", "logs:CreateLogStream", "logs:PutLogEvents"}
    [describe] = [s for s in statements if s["Action"] == "ec2:DescribeVpcEndpoints"]
    assert describe["Resource"] == "*"
    [role] = template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]


def test_the_custom_resource_carries_what_the_function_checks() -> None:
    stack, check = check_stack()
    template = Template.from_stack(stack)
    [resource] = template.find_resources(RESOURCE_TYPE).values()
    props = resource["Properties"]
    function = check.function.node.default_child
    assert isinstance(function, cdk.CfnElement)
    function_id = stack.get_logical_id(function)
    assert props["ServiceToken"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert props["Region"] == REGION
    assert props["VpcId"] == "vpc-123"
    assert props["Services"] == [
        {"Name": "com.amazonaws.us-east-1.sqs", "Kind": "Interface"},
        {"Name": "com.amazonaws.us-east-1.s3", "Kind": "Gateway"},
    ]
    assert props["RouteTableIds"] == ["rtb-1"]


def test_the_function_reads_what_the_construct_writes() -> None:
    stack, _ = check_stack()
    [resource] = Template.from_stack(stack).find_resources(RESOURCE_TYPE).values()
    sent = {**event(), "ResourceProperties": resource["Properties"]}
    request = core.parse_request(sent)
    assert request.vpc_id == "vpc-123"
    assert request.needs == (Need(SQS.name, "Interface"), Need(S3.name, "Gateway"))
    assert request.route_tables == ("rtb-1",)


def test_route_tables_unknown_at_synth_are_left_out() -> None:
    stack, _ = check_stack(route_tables=False)
    [resource] = Template.from_stack(stack).find_resources(RESOURCE_TYPE).values()
    assert "RouteTableIds" not in resource["Properties"]


def test_a_new_vpc_passes_its_route_tables_by_reference() -> None:
    stack, _ = check_stack(new_vpc=True)
    template = Template.from_stack(stack)
    [resource] = template.find_resources(RESOURCE_TYPE).values()
    tables = set(template.find_resources("AWS::EC2::RouteTable"))
    assert {table["Ref"] for table in resource["Properties"]["RouteTableIds"]} == tables
    assert len(tables) == 2


def test_the_log_group_follows_kms_key_and_retention() -> None:
    stack, _ = check_stack(kms_key=True)
    template = Template.from_stack(stack)
    [log_group] = template.find_resources("AWS::Logs::LogGroup").values()
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert "Fn::GetAtt" in log_group["Properties"]["KmsKeyId"]


def test_an_unknown_endpoint_kind_is_refused() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Env")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-1", availability_zones=["a"], isolated_subnet_ids=["s"]
    )
    with pytest.raises(ValueError, match="'sqs' is 'Private'"):
        EndpointCheck(
            stack,
            "Check",
            vpc=vpc,
            subnets=ISOLATED,
            services=[("sqs", "Private")],
            kms_key=None,
            log_retention=logs.RetentionDays.ONE_MONTH,
        )


# Updates and their rollbacks


def update(
    *, needs: tuple[Need, ...], before: tuple[Need, ...], vpc_id: str, url: str, **kw: Any
) -> dict[str, Any]:
    """An Update event whose previous properties held `before` (a rollback is an Update too,
    back to the old properties)."""
    sent = event("Update", needs=needs, vpc_id=vpc_id, url=url, **kw)
    previous = event(needs=before, vpc_id=vpc_id, **kw)["ResourceProperties"]
    return {**sent, "OldResourceProperties": previous}


def test_an_update_fails_for_a_newly_required_endpoint(vpc: Vpc, response_url: str) -> None:
    vpc.interface("sqs")
    sent = update(needs=(SQS, LOGS), before=(SQS,), vpc_id=vpc.vpc_id, url=response_url)

    assert handler.run(sent, ec2=vpc.ec2)["Status"] == "FAILED"
    [answer] = answers()
    assert "com.amazonaws.us-east-1.logs (Interface, private DNS on)" in answer["Reason"]


def test_a_rollback_is_not_failed_for_an_endpoint_required_before(
    vpc: Vpc, response_url: str
) -> None:
    """The update added LOGS and failed elsewhere; meanwhile SQS's endpoint was deleted. The
    rollback (an Update back to SQS alone) must complete, saying what is missing."""
    sent = update(needs=(SQS,), before=(SQS, LOGS), vpc_id=vpc.vpc_id, url=response_url)

    assert handler.run(sent, ec2=vpc.ec2)["Status"] == "SUCCESS"
    [answer] = answers()
    assert answer["Reason"].startswith(f"WARNING: VPC {vpc.vpc_id} has no usable endpoint for: ")
    assert "com.amazonaws.us-east-1.sqs (Interface, private DNS on)" in answer["Reason"]


def test_an_update_into_another_vpc_checks_every_endpoint(vpc: Vpc, response_url: str) -> None:
    sent = update(needs=(SQS,), before=(SQS,), vpc_id=vpc.vpc_id, url=response_url)
    sent["OldResourceProperties"]["VpcId"] = "vpc-0ld"

    assert handler.run(sent, ec2=vpc.ec2)["Status"] == "FAILED"


def test_new_route_tables_recheck_the_gateway_endpoints(vpc: Vpc, response_url: str) -> None:
    vpc.gateway("s3", vpc.route_tables[:1])
    sent = update(
        needs=(S3,),
        before=(S3,),
        vpc_id=vpc.vpc_id,
        url=response_url,
        route_tables=tuple(vpc.route_tables),
    )
    sent["OldResourceProperties"]["RouteTableIds"] = vpc.route_tables[:1]

    assert handler.run(sent, ec2=vpc.ec2)["Status"] == "FAILED"


def test_unreadable_previous_properties_check_everything() -> None:
    sent = {**event("Update", needs=(SQS,)), "OldResourceProperties": {"VpcId": 3}}
    request = core.parse_request(sent)

    assert core.must_hold(request, core.parse_previous(sent)) == (SQS,)
    assert core.parse_previous(event("Create")) is None
