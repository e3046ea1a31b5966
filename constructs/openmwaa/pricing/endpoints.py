"""VPC endpoints against NAT gateways: what a private network's endpoints cost a month next to
the NAT gateway(s) they replace, and the traffic at which one becomes cheaper (pure).

Both carry the environment's traffic to AWS services (S3 and DynamoDB go through free gateway
endpoints either way): interface endpoints bill every Availability Zone they sit in by the
hour plus a small rate per GB; a NAT gateway bills by the hour, its public IPv4 address by the
hour, and a larger rate per GB. Below the break-even traffic the NAT gateway costs less.

Amazon MWAA in a VPC without internet access needs interface endpoints of its own, which the
customer creates (:data:`MWAA_PRIVATE_ROUTING`); :func:`mwaa_private_routing_items` prices them
so that a private template is compared with a private MWAA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import HOURS_PER_MONTH, LineItem
from .prices import TABLE, PriceTable
from .template import resources, service_name

MWAA_PRIVATE_ROUTING_SOURCE = (
    "https://docs.aws.amazon.com/mwaa/latest/userguide/vpc-vpe-create-access.html"
)
"""MWAA's user guide: the VPC endpoints an environment in a VPC without internet access needs."""

MWAA_PRIVATE_ROUTING: tuple[str, ...] = (
    "monitoring",
    "ecr.dkr",
    "ecr.api",
    "logs",
    "sqs",
    "kms",
    "airflow.api",
    "airflow.env",
    "airflow.ops",
)
"""The interface endpoints MWAA's private routing needs, as its user guide lists them (S3, the
tenth, is a free gateway endpoint). The database and web server endpoints MWAA creates itself
are not in the list and not priced."""

MWAA_SUBNETS = 2
"""MWAA runs in two private subnets in different Availability Zones: each endpoint in both."""


@dataclass(frozen=True)
class NatOption:
    """NAT gateways that would replace the endpoints, and where the two cost the same."""

    gateways: int
    label: str
    fixed: float
    """Dollars a month: the gateways and their public IPv4 addresses, always on."""
    break_even_gb: float | None
    """GB a month above which the endpoints cost less: 0 when they cost less at any traffic,
    None when never (a NAT gateway's GB no dearer than an endpoint's)."""


@dataclass(frozen=True)
class EndpointComparison:
    """The template's VPC endpoints next to NAT gateways, in dollars a month."""

    interface: tuple[tuple[str, int], ...]
    """Each interface endpoint's service and the Availability Zones it is in."""
    gateway: tuple[str, ...]
    """The gateway endpoints' services (free)."""
    endpoint_az_hours: float
    endpoints_fixed: float
    """The interface endpoints, always on."""
    endpoint_gb_rate: float
    nat_gb_rate: float
    nat_hour: float
    ipv4_hour: float
    options: tuple[NatOption, ...]
    template_nat_gateways: int
    """NAT gateways the template has too (0 in a private network)."""
    not_priced: tuple[str, ...] = ()
    """Interface endpoints whose subnets are not a literal list (left out of the sums)."""


def short_service(value: Any) -> str:
    """``ecr.api`` from ``com.amazonaws.us-east-1.ecr.api`` or its ``Fn::Join``."""
    text = value if isinstance(value, str) else service_name(value)
    parts = text.split(".", 3)
    if len(parts) == 4 and parts[0] == "com" and parts[1] == "amazonaws":
        return parts[3]
    return text


def break_even(
    endpoints_fixed: float, nat_fixed: float, endpoint_gb: float, nat_gb: float
) -> float | None:
    """GB a month above which the endpoints cost less than the NAT gateway(s): 0 when they cost
    less at any traffic, None when never."""
    if endpoints_fixed <= nat_fixed:
        return 0.0
    if nat_gb <= endpoint_gb:
        return None
    return (endpoints_fixed - nat_fixed) / (nat_gb - endpoint_gb)


def is_private(template: Mapping[str, Any]) -> bool:
    """The template builds a private network: interface endpoints, and no NAT gateway or
    internet gateway."""
    found = resources(template).values()
    types = {resource["Type"] for resource in found}
    if "AWS::EC2::NatGateway" in types or "AWS::EC2::InternetGateway" in types:
        return False
    return any(
        resource["Type"] == "AWS::EC2::VPCEndpoint"
        and (resource.get("Properties") or {}).get("VpcEndpointType") == "Interface"
        for resource in found
    )


def compare_endpoints(
    template: Mapping[str, Any], prices: PriceTable = TABLE
) -> EndpointComparison | None:
    """The template's endpoints against NAT gateways; None without an interface endpoint.
    The NAT side is the template's own NAT gateways when it has some, else one (the
    ``nat_gateways`` default) and one per Availability Zone of the endpoints."""
    interface: list[tuple[str, int]] = []
    gateway: list[str] = []
    skipped: list[str] = []
    nat_gateways = 0
    for logical_id, resource in resources(template).items():
        kind = resource["Type"]
        if kind == "AWS::EC2::NatGateway":
            nat_gateways += 1
        if kind != "AWS::EC2::VPCEndpoint":
            continue
        props = resource.get("Properties") or {}
        service = short_service(props.get("ServiceName"))
        endpoint_type = props.get("VpcEndpointType", "Gateway")
        if endpoint_type == "Gateway":
            gateway.append(service)
        elif endpoint_type == "Interface":
            subnets = props.get("SubnetIds")
            if isinstance(subnets, list):
                interface.append((service, len(subnets)))
            else:
                skipped.append(logical_id)
    if not interface:
        return None
    az_hours = sum(zones for _service, zones in interface) * HOURS_PER_MONTH
    endpoints_fixed = az_hours * prices["endpoint.az_hour"]
    endpoint_gb, nat_gb = prices["endpoint.gb"], prices["nat.gb"]
    per_gateway = HOURS_PER_MONTH * (prices["nat.hour"] + prices["ipv4.hour"])
    if nat_gateways:
        counts = [(nat_gateways, "as the template has")]
    else:
        zones = max(z for _s, z in interface)
        counts = [(1, "nat_gateways=1, the default")]
        if zones > 1:
            counts.append((zones, "one per Availability Zone"))
    options = tuple(
        NatOption(
            count,
            label,
            count * per_gateway,
            break_even(endpoints_fixed, count * per_gateway, endpoint_gb, nat_gb),
        )
        for count, label in counts
    )
    return EndpointComparison(
        interface=tuple(interface),
        gateway=tuple(gateway),
        endpoint_az_hours=az_hours,
        endpoints_fixed=endpoints_fixed,
        endpoint_gb_rate=endpoint_gb,
        nat_gb_rate=nat_gb,
        nat_hour=prices["nat.hour"],
        ipv4_hour=prices["ipv4.hour"],
        options=options,
        template_nat_gateways=nat_gateways,
        not_priced=tuple(skipped),
    )


def mwaa_private_routing_items(
    endpoint_gb: float, prices: PriceTable = TABLE
) -> tuple[LineItem, ...]:
    """The interface endpoints MWAA's private routing needs, in its two subnets, always on, and
    ``endpoint_gb`` through each (as the estimate states it for ours)."""
    count = len(MWAA_PRIVATE_ROUTING)
    return (
        LineItem(
            f"MWAA private routing: {count} interface endpoints you create, in {MWAA_SUBNETS} AZs",
            (),
            count * MWAA_SUBNETS * HOURS_PER_MONTH,
            "endpoint-AZ-hours",
            prices["endpoint.az_hour"],
            "mwaa",
        ),
        LineItem(
            "MWAA private routing: interface endpoint data",
            (),
            count * endpoint_gb,
            "GB",
            prices["endpoint.gb"],
            "mwaa",
        ),
    )
