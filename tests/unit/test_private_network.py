"""`private_network`: no route out of the VPC, every AWS service reached through an endpoint."""

from __future__ import annotations

import types
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Annotations, Match, Template

from openmwaa import AirflowEnvironment, SignIn, WebserverAccessMode, defaults
from openmwaa.database import custom_resource_provider
from openmwaa.environment import PRIVATE_SIGN_IN_WARNING_ID, PRIVATE_WITHOUT_MIRROR_WARNING_ID
from openmwaa.environment_props import AirflowEnvironmentProps, resolve
from openmwaa.validation import validate
from openmwaa.vpc_endpoints import (
    ENDPOINT_SERVICES_FOR_ACTION_PREFIX,
    GATEWAY,
    INTERFACE,
    NO_NETWORK_CALL,
    POLICY_SERVICES,
    required_endpoints,
)
from tests.stacks import TEST_ENV, environment_stack, isolated_vpc
from tools.cdk_app import project_app, project_context

Json = dict[str, Any]


class Built:
    """A synthesized environment: the stack, the construct and its template as JSON."""

    def __init__(self, stack: cdk.Stack, env: AirflowEnvironment) -> None:
        self.stack = stack
        self.env = env
        self.template = Template.from_stack(stack)
        self.resources: dict[str, Json] = self.template.to_json()["Resources"]

    def of_type(self, kind: str) -> dict[str, Json]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


def _build(**props: Any) -> Built:
    stack, env = environment_stack(**props)
    return Built(stack, env)


@pytest.fixture(scope="module")
def private() -> Built:
    return _build(private_network=True)


@pytest.fixture(scope="module")
def private_kms_exec() -> Built:
    app = project_app()
    stack = cdk.Stack(app, "KmsExec", env=TEST_ENV)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    env = AirflowEnvironment(
        stack,
        "Airflow",
        private_network=True,
        kms_key=key,
        enable_execute_command=True,
        pypi_mirror=False,
    )
    return Built(stack, env)


def _own_vpc_build(*, oidc: bool = False, **props: Any) -> Built:
    app = project_app()
    stack = cdk.Stack(app, "Own", env=TEST_ENV)
    if oidc:
        props["sign_in"] = _oidc(
            secretsmanager.Secret.from_secret_name_v2(stack, "IdpSecret", "idp-client")
        )
    env = AirflowEnvironment(
        stack, "Airflow", vpc=isolated_vpc(stack), private_network=True, **props
    )
    return Built(stack, env)


def _short_name(service_name: Any) -> str:
    """`com.amazonaws.<region>.sqs` (a string, or a join with the region token) -> `sqs`."""
    if isinstance(service_name, str):
        return service_name.split(f"{TEST_ENV.region}.", 1)[1]
    return str(service_name["Fn::Join"][1][-1]).lstrip(".")


def _endpoints(built: Built) -> dict[str, Json]:
    return {
        _short_name(v["Properties"]["ServiceName"]): v
        for v in built.of_type("AWS::EC2::VPCEndpoint").values()
    }


def _ref(value: Any) -> str:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")


def _in_vpc_roles(built: Built) -> set[str]:
    """Every role of an in-VPC function or of a task definition (task and execution roles)."""
    roles = {
        _ref(f["Properties"]["Role"])
        for f in built.of_type("AWS::Lambda::Function").values()
        if "VpcConfig" in f["Properties"]
    }
    for task in built.of_type("AWS::ECS::TaskDefinition").values():
        for key in ("TaskRoleArn", "ExecutionRoleArn"):
            if key in task["Properties"]:
                roles.add(_ref(task["Properties"][key]))
    return roles


def _actions(built: Built, role: str) -> set[str]:
    """The actions the template grants `role` through its own policies (inline and
    AWS::IAM::Policy). Lambda's managed policies are left out: Lambda itself uses them (logs,
    network interfaces), from outside the VPC."""
    documents = [
        p["PolicyDocument"] for p in built.resources[role]["Properties"].get("Policies", [])
    ]
    documents += [
        p["Properties"]["PolicyDocument"]
        for p in built.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"].get("Roles", [])
    ]
    actions: set[str] = set()
    for document in documents:
        for statement in document["Statement"]:
            found = statement["Action"]
            actions.update([found] if isinstance(found, str) else found)
    return actions


# --- the new VPC has no route out ------------------------------------------------------------


def test_private_new_vpc_has_no_route_out(private: Built) -> None:
    for kind in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::TransitGatewayAttachment",
    ):
        assert private.of_type(kind) == {}, kind
    for route in private.of_type("AWS::EC2::Route").values():
        properties = route["Properties"]
        assert properties.get("DestinationCidrBlock") != "0.0.0.0/0", route
        assert properties.get("DestinationIpv6CidrBlock") != "::/0", route


def test_private_new_vpc_has_isolated_subnets_in_two_zones_and_flow_logs(private: Built) -> None:
    subnets = private.of_type("AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(not s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    assert all(s["Properties"]["CidrBlock"].endswith("/20") for s in subnets.values())
    private.template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_nat_gateways_zero_is_a_private_network() -> None:
    resolved = resolve(AirflowEnvironmentProps(nat_gateways=0), construct_id="Airflow")
    assert resolved.private_network
    assert resolved.vpc_endpoints == defaults.VPC_ENDPOINTS_NEW_VPC
    assert resolved.pypi_mirror
    assert validate(resolved) == []


def test_private_network_defaults() -> None:
    public = resolve(AirflowEnvironmentProps(), construct_id="Airflow")
    assert (public.private_network, public.vpc_endpoints, public.pypi_mirror) == (
        defaults.PRIVATE_NETWORK,
        None,
        False,
    )
    private = resolve(AirflowEnvironmentProps(private_network=True), construct_id="Airflow")
    assert (private.nat_gateways, private.vpc_endpoints) == (0, defaults.VPC_ENDPOINTS_NEW_VPC)
    vpc: Any = object()
    own = resolve(AirflowEnvironmentProps(private_network=True, vpc=vpc), construct_id="Airflow")
    assert (own.nat_gateways, own.vpc_endpoints) == (None, defaults.VPC_ENDPOINTS_OWN_VPC)
    mirror = resolve(AirflowEnvironmentProps(pypi_mirror=True), construct_id="Airflow")
    assert mirror.pypi_mirror and not mirror.private_network


# --- endpoints ---------------------------------------------------------------------------------


def test_private_endpoints_are_exactly_the_needs(private: Built) -> None:
    needs = required_endpoints(kms_key=False, execute_command=False, pypi_mirror=True)
    endpoints = _endpoints(private)
    assert sorted(endpoints) == sorted(need.service for need in needs)
    for need in needs:
        assert endpoints[need.service]["Properties"]["VpcEndpointType"] == need.kind


def test_conditional_endpoints_follow_kms_execute_command_and_the_mirror(
    private: Built, private_kms_exec: Built
) -> None:
    default, conditional = set(_endpoints(private)), set(_endpoints(private_kms_exec))
    assert {"kms", "ssmmessages"} <= conditional
    assert not {"kms", "ssmmessages"} & default
    assert {"codeartifact.api", "codeartifact.repositories"} <= default
    assert not {"codeartifact.api", "codeartifact.repositories"} & conditional
    needs = required_endpoints(kms_key=True, execute_command=True, pypi_mirror=False)
    assert sorted(conditional) == sorted(need.service for need in needs)


def test_required_endpoints_names_why_each_is_needed() -> None:
    needs = required_endpoints(
        kms_key=True, execute_command=True, pypi_mirror=True, verified_permissions=True
    )
    assert all(need.why for need in needs)
    assert len({need.service for need in needs}) == len(needs)
    mapped = {s for services in ENDPOINT_SERVICES_FOR_ACTION_PREFIX.values() for s in services}
    assert {need.service for need in needs} == mapped
    assert {need.service for need in needs if need.kind == GATEWAY} == {"s3", "dynamodb"}


def test_interface_endpoints_use_private_dns_their_own_group_and_every_zone(
    private: Built,
) -> None:
    group = private.logical_id(private.env.endpoints.security_group)  # type: ignore[union-attr]
    for service, endpoint in _endpoints(private).items():
        properties = endpoint["Properties"]
        if properties["VpcEndpointType"] != INTERFACE:
            continue
        assert properties["PrivateDnsEnabled"] is True, service
        assert properties["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}], service
        assert len(properties["SubnetIds"]) == 2, service


def test_endpoint_group_allows_https_from_the_environment_only(private: Built) -> None:
    endpoints = private.env.endpoints
    assert endpoints is not None
    group = private.logical_id(endpoints.security_group)
    sources = {
        private.logical_id(private.env.network.security_group),
        private.logical_id(private.env.api_access.security_group),  # type: ignore[union-attr]
    }
    ingress = [
        rule["Properties"]
        for rule in private.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    assert {_ref(rule["SourceSecurityGroupId"]) for rule in ingress} == sources
    assert all((r["IpProtocol"], r["FromPort"], r["ToPort"]) == ("tcp", 443, 443) for r in ingress)
    properties = private.resources[group]["Properties"]
    assert "SecurityGroupIngress" not in properties
    # CDK's placeholder for "no egress": ICMP 252/86 to 255.255.255.255/32, matching nothing.
    assert [e["CidrIp"] for e in properties["SecurityGroupEgress"]] == ["255.255.255.255/32"]


def test_endpoint_policies_allow_exactly_the_in_vpc_roles(private: Built) -> None:
    roles = _in_vpc_roles(private)
    assert len(roles) >= 6
    for service, endpoint in _endpoints(private).items():
        document = endpoint["Properties"].get("PolicyDocument")
        if service not in POLICY_SERVICES:
            assert document is None, f"{service} keeps AWS's default policy"
            continue
        [statement] = [s for s in document["Statement"] if s.get("Sid") == "EnvironmentRoles"]
        assert (statement["Action"], statement["Resource"]) == ("*", "*")
        assert statement["Principal"] == {"AWS": "*"}
        allowed = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        assert {_ref(arn) for arn in allowed} == roles, service


def test_s3_endpoint_lets_ecr_layers_through(private: Built) -> None:
    document = _endpoints(private)["s3"]["Properties"]["PolicyDocument"]
    [layers] = [s for s in document["Statement"] if s.get("Sid") == "EcrImageLayers"]
    assert layers["Action"] == "s3:GetObject"
    assert "prod-eu-west-1-starport-layer-bucket/*" in str(layers["Resource"])


def test_allow_principal_adds_your_role(private: Built) -> None:
    endpoints = private.env.endpoints
    assert endpoints is not None
    count = len(endpoints.principals)
    endpoints.allow_principal(private.env.execution_role)
    assert len(endpoints.principals) == count


@pytest.mark.parametrize("variant", ["private", "private_kms_exec"])
def test_every_action_of_an_in_vpc_role_has_an_endpoint(
    variant: str, request: pytest.FixtureRequest
) -> None:
    built: Built = request.getfixturevalue(variant)
    present = set(_endpoints(built))
    for role in sorted(_in_vpc_roles(built)):
        for prefix in sorted({action.split(":")[0] for action in _actions(built, role)}):
            if prefix in NO_NETWORK_CALL:
                continue
            services = ENDPOINT_SERVICES_FOR_ACTION_PREFIX.get(prefix)
            assert services is not None, (
                f"{role} is granted {prefix}:* actions, whose service has no endpoint mapping: "
                "add it to ENDPOINT_SERVICES_FOR_ACTION_PREFIX (and an endpoint) or NO_NETWORK_CALL"
            )
            missing = [s for s in services if s not in present]
            assert missing == [], f"{role} calls {prefix} but the VPC has no {missing} endpoint"


# --- functions outside the VPC, dependencies ---------------------------------------------------


def test_functions_that_reach_nothing_in_the_vpc_run_outside_it(private: Built) -> None:
    env = private.env
    assert env.image_mirror is not None and env.database.deletion_protection is not None
    functions = [
        env.pauser.function,
        env.image_mirror.function,
        custom_resource_provider(env.database.deletion_protection),
    ]
    for function in functions:
        resource = private.resources[private.logical_id(function)]
        assert "VpcConfig" not in resource["Properties"], function.node.path


def test_in_vpc_services_and_functions_depend_on_every_endpoint(private: Built) -> None:
    endpoints = set(private.of_type("AWS::EC2::VPCEndpoint"))
    dependents = {
        **private.of_type("AWS::ECS::Service"),
        **{
            k: v
            for k, v in private.of_type("AWS::Lambda::Function").items()
            if "VpcConfig" in v["Properties"]
        },
    }
    assert len(dependents) >= 8
    for logical_id, resource in dependents.items():
        assert endpoints <= set(resource.get("DependsOn", [])), logical_id


# --- your own VPC: create, verify, unchecked ---------------------------------------------------


def test_own_vpc_verify_checks_the_endpoints_instead_of_creating_them() -> None:
    built = _own_vpc_build()
    assert built.of_type("AWS::EC2::VPCEndpoint") == {}
    check = built.env.endpoint_check
    assert check is not None
    [resource] = [v for k, v in built.resources.items() if k == built.logical_id(check.resource)]
    names = {s["Name"].rsplit(".", 1)[-1] for s in resource["Properties"]["Services"]}
    assert {"sqs", "s3", "dynamodb"} <= names
    function = built.resources[built.logical_id(check.function)]
    assert "VpcConfig" not in function["Properties"]
    for logical_id, service in built.of_type("AWS::ECS::Service").items():
        assert built.logical_id(check.resource) in service.get("DependsOn", []), logical_id


def test_own_vpc_create_puts_the_endpoints_in_its_isolated_subnets() -> None:
    built = _own_vpc_build(vpc_endpoints="create")
    endpoints = _endpoints(built)
    assert "sqs" in endpoints
    assert endpoints["sqs"]["Properties"]["SubnetIds"] == [
        "subnet-0bbbbbbbbbbbbbbb1",
        "subnet-0bbbbbbbbbbbbbbb2",
    ]
    assert endpoints["s3"]["Properties"]["RouteTableIds"] == [
        "rtb-0ccccccccccccccc1",
        "rtb-0ccccccccccccccc2",
    ]
    built.template.has_resource_properties(
        "AWS::EFS::MountTarget", {"SubnetId": "subnet-0bbbbbbbbbbbbbbb1"}
    )


def test_own_vpc_unchecked_creates_and_checks_nothing() -> None:
    built = _own_vpc_build(vpc_endpoints="unchecked")
    assert built.of_type("AWS::EC2::VPCEndpoint") == {}
    assert built.env.endpoints is None and built.env.endpoint_check is None


def test_own_vpc_warns_about_a_sign_in_on_the_internet() -> None:
    built = _own_vpc_build(oidc=True)
    warnings = Annotations.from_stack(built.stack).find_warning(
        "*", Match.string_like_regexp(PRIVATE_SIGN_IN_WARNING_ID)
    )
    assert len(warnings) == 1


def test_a_private_network_without_the_pypi_mirror_warns(private_kms_exec: Built) -> None:
    warnings = Annotations.from_stack(private_kms_exec.stack).find_warning(
        "*", Match.string_like_regexp(PRIVATE_WITHOUT_MIRROR_WARNING_ID)
    )
    assert len(warnings) == 1


def test_a_private_network_with_the_pypi_mirror_does_not_warn(private: Built) -> None:
    warnings = Annotations.from_stack(private.stack).find_warning(
        "*", Match.string_like_regexp(PRIVATE_WITHOUT_MIRROR_WARNING_ID)
    )
    assert warnings == []


# --- validation ------------------------------------------------------------------------------


def _oidc(secret: Any = None) -> SignIn:
    secret = secret or types.SimpleNamespace(secret_arn="arn:aws:secretsmanager:eu-west-1:1:x")
    return SignIn.oidc(
        issuer="https://idp.example.com",
        client_id="client",
        client_secret=secret,
        roles={"admins": "Admin"},
    )


def _problems(**props: Any) -> list[str]:
    return validate(resolve(AirflowEnvironmentProps(**props), construct_id="Airflow"))


@pytest.mark.parametrize(
    ("props", "names"),
    [
        ({"vpc_endpoints": "create"}, ("vpc_endpoints", "private_network")),
        ({"private_network": True, "vpc_endpoints": "made"}, ("vpc_endpoints", "'unchecked'")),
        (
            {
                "private_network": True,
                "webserver_access_mode": WebserverAccessMode.PUBLIC_ONLY,
                "domain_name": "airflow.example.com",
                "certificate": types.SimpleNamespace(),
                "allowed_cidrs": ["203.0.113.0/24"],
                "sign_in": SignIn.password(),
            },
            ("webserver_access_mode", "private_network"),
        ),
        ({"private_network": True, "sign_in": _oidc()}, ("sign_in", "SignIn.password()")),
        (
            {
                "private_network": True,
                "domain_name": "airflow.example.com",
                "certificate": types.SimpleNamespace(),
            },
            ("sign_in", "the default with HTTPS"),
        ),
        ({"private_network": False, "nat_gateways": 0}, ("nat_gateways", "private_network")),
        ({"private_network": True, "nat_gateways": 1}, ("nat_gateways", "private_network")),
        ({"nat_gateways": 3}, ("nat_gateways", "0 for a private network")),
    ],
)
def test_private_network_validation(props: dict[str, Any], names: tuple[str, ...]) -> None:
    problems = _problems(**props)
    assert len(problems) == 1, problems
    assert all(name in problems[0] for name in names), problems


def test_private_network_accepts_password_sign_in_and_own_vpc_modes() -> None:
    vpc: Any = object()
    assert _problems(private_network=True, sign_in=SignIn.password()) == []
    for mode in defaults.VPC_ENDPOINT_MODES:
        assert _problems(private_network=True, vpc=vpc, vpc_endpoints=mode) == []
    assert _problems(private_network=True, vpc=vpc, sign_in=_oidc()) == []


def test_private_network_refusal_raises_at_construction() -> None:
    stack = cdk.Stack(cdk.App(), "Refused", env=TEST_ENV)
    with pytest.raises(ValueError, match="vpc_endpoints"):
        AirflowEnvironment(stack, "Airflow", vpc_endpoints="verify")


# --- the bundled app ---------------------------------------------------------------------------


def test_bundled_app_synthesizes_in_both_modes() -> None:
    from app import PRIVATE_NETWORK_CONTEXT, build_app

    counts = {}
    for value in ("false", "true"):
        app = cdk.App(context={**project_context(), PRIVATE_NETWORK_CONTEXT: value})
        [stack] = build_app(app).node.children
        assert isinstance(stack, cdk.Stack)
        template = Template.from_stack(stack).to_json()["Resources"]
        counts[value] = {
            kind: sum(1 for r in template.values() if r["Type"] == kind)
            for kind in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway")
        }
        counts[value]["endpoints"] = sum(
            1 for r in template.values() if r["Type"] == "AWS::EC2::VPCEndpoint"
        )
    assert counts["false"] == {
        "AWS::EC2::NatGateway": 1,
        "AWS::EC2::InternetGateway": 1,
        "endpoints": 1,
    }
    assert counts["true"]["AWS::EC2::NatGateway"] == 0
    assert counts["true"]["AWS::EC2::InternetGateway"] == 0
    assert counts["true"]["endpoints"] == len(
        required_endpoints(kms_key=False, execute_command=False, pypi_mirror=True)
    )


def test_bundled_app_refuses_a_context_value_that_is_not_a_boolean() -> None:
    from app import PRIVATE_NETWORK_CONTEXT, build_app

    with pytest.raises(ValueError, match=PRIVATE_NETWORK_CONTEXT):
        build_app(cdk.App(context={PRIVATE_NETWORK_CONTEXT: "yes"}))


def test_in_vpc_lambda_detection_matches_the_template(private: Built) -> None:
    in_vpc = {
        private.logical_id(f)
        for f in private.env.node.find_all()
        if isinstance(f, lambda_.Function) and f.is_bound_to_vpc
    }
    assert in_vpc == {
        k
        for k, v in private.of_type("AWS::Lambda::Function").items()
        if "VpcConfig" in v["Properties"]
    }
