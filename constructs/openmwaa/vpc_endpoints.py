"""The VPC endpoints of a private network: which AWS services the environment reaches from
inside its VPC, and the construct that creates their endpoints.

In a private network (`private_network=True`) nothing inside the VPC has a route to the
internet, so every AWS API something inside it calls must have an endpoint there. The
mapping from IAM action prefixes to endpoint services is the contract the tests check every
in-VPC role against: a role granted an action whose service has no endpoint would fail at run
time, so a test fails first, naming the prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import jsii
from aws_cdk import IResolveContext, IStableListProducer, Lazy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from constructs import Construct, IConstruct

GATEWAY: Literal["Gateway"] = "Gateway"
INTERFACE: Literal["Interface"] = "Interface"
EndpointKind = Literal["Gateway", "Interface"]

ENDPOINT_SERVICES_FOR_ACTION_PREFIX: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "s3": ("s3",),
        "dynamodb": ("dynamodb",),
        "ecr": ("ecr.api", "ecr.dkr"),
        "logs": ("logs",),
        "cloudwatch": ("monitoring",),
        "sqs": ("sqs",),
        "secretsmanager": ("secretsmanager",),
        "ecs": ("ecs",),
        "kms": ("kms",),
        "sts": ("sts",),
        "codeartifact": ("codeartifact.api", "codeartifact.repositories"),
        "ssmmessages": ("ssmmessages",),
        "verifiedpermissions": ("verifiedpermissions",),
    }
)
"""IAM action prefix -> the endpoint services (short names, `com.amazonaws.<region>.` left
out) a call of that prefix goes through."""

NO_NETWORK_CALL: Mapping[str, str] = MappingProxyType(
    {
        "iam": "iam:PassRole is not an API call: the service called (ECS RunTask) checks it.",
        "elasticfilesystem": (
            "ClientMount, ClientWrite and ClientRootAccess authorize NFS mounts, made through "
            "the file system's mount targets inside the VPC, not calls to the EFS API."
        ),
    }
)
"""IAM action prefixes granted to in-VPC roles that never make a network call to their
service, with the reason."""

STARPORT_LAYER_BUCKET = "prod-{region}-starport-layer-bucket"
"""The AWS-owned bucket ECR serves image layers from, through presigned URLs."""

POLICY_SERVICES: frozenset[str] = frozenset(
    {
        "s3",
        "dynamodb",
        "ecr.api",
        "ecr.dkr",
        "logs",
        "monitoring",
        "sqs",
        "secretsmanager",
        "kms",
        "sts",
        "codeartifact.api",
        "codeartifact.repositories",
    }
)
"""The endpoint services we give a policy to. `ecs`, `ssmmessages` and `verifiedpermissions`
keep AWS's default policy: we could not verify that they accept a custom one, and a policy a
service does not accept fails the endpoint's creation."""


@dataclass(frozen=True)
class EndpointNeed:
    """One endpoint the environment needs in a private network."""

    service: str
    """Short service name: `sqs` for `com.amazonaws.<region>.sqs`."""
    kind: EndpointKind
    policy: bool
    """Whether the endpoint gets a policy limiting it to the environment's in-VPC roles."""
    why: str
    """What inside the VPC calls it."""


def _need(service: str, kind: EndpointKind, why: str) -> EndpointNeed:
    return EndpointNeed(service, kind, service in POLICY_SERVICES, why)


ALWAYS_NEEDED: tuple[EndpointNeed, ...] = (
    _need(
        "s3",
        GATEWAY,
        "image layers (ECR serves them from S3), the DAG sync's and Airflow's reads of the "
        "source bucket, your DAGs' S3 calls",
    ),
    _need("dynamodb", GATEWAY, "the autoscaler's state table"),
    _need("ecr.api", INTERFACE, "ECS authenticates to ECR and reads image manifests"),
    _need("ecr.dkr", INTERFACE, "ECS pulls the image from the environment's repository"),
    _need(
        "logs",
        INTERFACE,
        "the containers' awslogs driver and Airflow's remote task logs",
    ),
    _need(
        "monitoring",
        INTERFACE,
        "Airflow's metrics (the metrics relay in each task) and the autoscaler's metrics",
    ),
    _need("sqs", INTERFACE, "the Celery broker; the autoscaler reads the queues' depth"),
    _need(
        "secretsmanager",
        INTERFACE,
        "ECS injects the environment's secrets; Airflow's secrets backend; the API access "
        "function reads the machine key",
    ),
    _need(
        "ecs",
        INTERFACE,
        "the DAG sync rolls services and runs the requirements build; the autoscaler reads "
        "services and sets worker counts",
    ),
    _need(
        "sts",
        INTERFACE,
        "AWS SDK calls in tasks that assume roles or ask who they are (the amazon provider's "
        "connections)",
    ),
)
"""The endpoints every private environment needs."""


def required_endpoints(
    *,
    kms_key: bool,
    execute_command: bool,
    pypi_mirror: bool,
    verified_permissions: bool = False,
) -> tuple[EndpointNeed, ...]:
    """Every endpoint a private environment needs: `ALWAYS_NEEDED`, plus `kms` with a
    `kms_key`, `ssmmessages` with `enable_execute_command`, the two CodeArtifact endpoints
    with the PyPI mirror, and `verifiedpermissions` with `SignIn.iam_identity_center()`."""
    needs = list(ALWAYS_NEEDED)
    if kms_key:
        needs.append(
            _need(
                "kms",
                INTERFACE,
                "kms_key: the roles are granted the key, and code in the tasks that calls KMS "
                "itself (client-side encryption, the amazon provider's KMS hooks) reaches it",
            )
        )
    if execute_command:
        needs.append(
            _need("ssmmessages", INTERFACE, "enable_execute_command: ECS Exec's Session Manager")
        )
    if pypi_mirror:
        needs.extend(
            (
                _need(
                    "codeartifact.api",
                    INTERFACE,
                    "pypi_mirror: the PyPI mirror's token and repository endpoint",
                ),
                _need(
                    "codeartifact.repositories",
                    INTERFACE,
                    "pypi_mirror: pip downloads packages from the mirror",
                ),
            )
        )
    if verified_permissions:
        needs.append(
            _need(
                "verifiedpermissions",
                INTERFACE,
                "SignIn.iam_identity_center(): the AWS auth manager's authorization calls",
            )
        )
    return tuple(needs)


@jsii.implements(IStableListProducer)
class _PrincipalArns:
    """The role ARNs allowed through the endpoints, read at synth (roles added later count)."""

    def __init__(self) -> None:
        self.roles: list[iam.IRole] = []

    def produce(self, context: IResolveContext | None = None) -> list[str]:
        return [role.role_arn for role in self.roles]


class EnvironmentEndpoints(Construct):
    """The VPC endpoints of a private environment, one per `EndpointNeed`.

    Gateway endpoints (S3, DynamoDB; free) on the route tables of `subnets`. Interface
    endpoints in `subnets` (one per availability zone), private DNS on, behind their own
    security group (`security_group`, "Endpoints"): TCP 443 from `clients` only (add others
    with `allow_from`), no egress rule. Endpoints whose service takes a policy (`need.policy`)
    allow any action only to the roles given to `allow_principal` (condition
    `ArnEquals aws:PrincipalArn`); the S3 endpoint also lets anyone read ECR's image-layer
    bucket of the region, which ECR hands out through presigned URLs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        clients: ec2.ISecurityGroup,
        needs: tuple[EndpointNeed, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self.needs = needs
        self._principals = _PrincipalArns()
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Endpoints: the AWS services the Airflow environment calls, HTTPS only",
            allow_all_outbound=False,
        )
        """The interface endpoints' security group: TCP 443 from the environment only."""
        self.allow_from(clients)
        self.gateway_endpoints: dict[str, ec2.GatewayVpcEndpoint] = {}
        """Gateway endpoints by short service name (`s3`, `dynamodb`)."""
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        """Interface endpoints by short service name (`sqs`, `ecr.api`, ...)."""
        region = Stack.of(self).region
        for need in needs:
            endpoint_id = _construct_id(need.service)
            if need.kind == GATEWAY:
                gateway = ec2.GatewayVpcEndpoint(
                    self,
                    endpoint_id,
                    vpc=vpc,
                    service=ec2.GatewayVpcEndpointAwsService(need.service),
                    subnets=[subnets],
                )
                self.gateway_endpoints[need.service] = gateway
                if need.policy:
                    self._restrict(gateway)
                if need.service == "s3":
                    gateway.add_to_policy(
                        iam.PolicyStatement(
                            sid="EcrImageLayers",
                            principals=[iam.AnyPrincipal()],
                            actions=["s3:GetObject"],
                            resources=[
                                f"arn:{Stack.of(self).partition}:s3:::"
                                f"{STARPORT_LAYER_BUCKET.format(region=region)}/*"
                            ],
                        )
                    )
            else:
                interface = ec2.InterfaceVpcEndpoint(
                    self,
                    endpoint_id,
                    vpc=vpc,
                    service=ec2.InterfaceVpcEndpointAwsService(need.service),
                    subnets=subnets,
                    private_dns_enabled=True,
                    security_groups=[self.security_group],
                    open=False,
                )
                self.interface_endpoints[need.service] = interface
                if need.policy:
                    self._restrict(interface)

    def _restrict(self, endpoint: ec2.GatewayVpcEndpoint | ec2.InterfaceVpcEndpoint) -> None:
        endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="EnvironmentRoles",
                principals=[iam.AnyPrincipal()],
                actions=["*"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": Lazy.list(self._principals, omit_empty=False)}
                },
            )
        )

    @property
    def principals(self) -> tuple[iam.IRole, ...]:
        """The roles the endpoints' policies allow, in the order given."""
        return tuple(self._principals.roles)

    def allow_principal(self, role: iam.IRole) -> None:
        """Let `role` (say, of your own function or task in the VPC) call AWS through the
        endpoints that have a policy."""
        if all(role is not known for known in self._principals.roles):
            self._principals.roles.append(role)

    def allow_from(self, peer: ec2.IConnectable) -> None:
        """Let `peer` (a security group in the VPC) reach the interface endpoints on 443."""
        self.security_group.connections.allow_from(
            peer, ec2.Port.tcp(443), "HTTPS to the AWS service endpoints"
        )


def in_vpc_roles(scope: IConstruct, functions: Sequence[lambda_.Function]) -> list[iam.IRole]:
    """Every role that calls AWS from inside the VPC: the task and execution roles of each
    task definition under `scope` (the execution role is every Airflow container's task role),
    and the roles of `functions` (those bound to the VPC), each once."""
    roles: list[iam.IRole] = []
    for construct in scope.node.find_all():
        if isinstance(construct, ecs.TaskDefinition):
            roles.extend(r for r in (construct.task_role, construct.execution_role) if r)
    roles.extend(f.role for f in functions if f.role is not None)
    unique: list[iam.IRole] = []
    for role in roles:
        if all(role is not known for known in unique):
            unique.append(role)
    return unique


def _construct_id(service: str) -> str:
    return "".join(part.capitalize() for part in service.replace("-", ".").split("."))
