"""The network: NAT gateways, public IPv4 addresses, the load balancer, VPC endpoints."""

from __future__ import annotations

from .context import Context
from .model import HOURS_PER_MONTH
from .template import display_name, service_name


def price_network(ctx: Context) -> None:
    """NAT gateways and Elastic IPs (always on), application load balancers, VPC endpoints
    (interface: per AZ-hour; gateway: free)."""
    gateways = ctx.of_type("AWS::EC2::NatGateway")
    for lid, resource in gateways:
        ctx.add(
            f"{display_name(lid, resource)}: NAT gateway, always on",
            (lid,),
            HOURS_PER_MONTH,
            "hours",
            "nat.hour",
            "network",
        )
    if gateways:
        ctx.add(
            "NAT gateway data processed",
            [lid for lid, _ in gateways],
            ctx.usage.nat_gb,
            "GB",
            "nat.gb",
            "network",
            "usage nat_gb",
        )
    for lid, resource in ctx.of_type("AWS::EC2::EIP"):
        ctx.add(
            f"{display_name(lid, resource)}: public IPv4 address",
            (lid,),
            HOURS_PER_MONTH,
            "hours",
            "ipv4.hour",
            "network",
        )
    for lid, resource in ctx.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        props = resource.get("Properties") or {}
        if props.get("Type", "application") != "application":
            ctx.skip(lid, f"a {props.get('Type')} load balancer: no price in the table")
            continue
        label = display_name(lid, resource)
        ctx.add(
            f"{label}: load balancer, always on",
            (lid,),
            HOURS_PER_MONTH,
            "hours",
            "alb.hour",
            "network",
        )
        ctx.add(
            f"{label}: {ctx.usage.alb_lcu:g} LCU",
            (lid,),
            ctx.usage.alb_lcu * HOURS_PER_MONTH,
            "LCU-hours",
            "alb.lcu_hour",
            "network",
            "usage alb_lcu",
        )
        if props.get("Scheme") == "internet-facing":
            zones = len(props.get("Subnets") or props.get("SubnetMappings") or [])
            ctx.add(
                f"{label}: {zones} public IPv4 address(es)",
                (lid,),
                zones * HOURS_PER_MONTH,
                "address-hours",
                "ipv4.hour",
                "network",
            )
    for lid, resource in ctx.of_type("AWS::EC2::VPCEndpoint"):
        props = resource.get("Properties") or {}
        kind = props.get("VpcEndpointType", "Gateway")
        service = props.get("ServiceName")
        service_text = service if isinstance(service, str) else service_name(service)
        if kind == "Gateway":
            ctx.add(
                f"{service_text}: gateway endpoint (free)",
                (lid,),
                1,
                "endpoints",
                0.0,
                "network",
            )
        elif kind == "Interface":
            subnets = props.get("SubnetIds")
            if not isinstance(subnets, list):
                ctx.skip(lid, "an interface endpoint whose subnets are not a literal list")
                continue
            ctx.add(
                f"{service_text}: interface endpoint in {len(subnets)} AZ(s)",
                (lid,),
                len(subnets) * HOURS_PER_MONTH,
                "endpoint-AZ-hours",
                "endpoint.az_hour",
                "network",
            )
            ctx.add(
                f"{service_text}: interface endpoint data",
                (lid,),
                ctx.usage.endpoint_gb,
                "GB",
                "endpoint.gb",
                "network",
                "usage endpoint_gb",
            )
        else:
            ctx.skip(lid, f"a {kind} endpoint: no price in the table")
