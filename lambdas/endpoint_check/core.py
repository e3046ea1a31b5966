"""Pure core of the VPC endpoint check: no boto3, no network, no clock.

CloudFormation sends the custom resource's event (:func:`parse_request`): the VPC, the
endpoint services the environment needs (:class:`Need`) and, when the construct knows them,
the route tables of the environment's subnets. :func:`missing` compares the needs with the
answer of EC2 ``DescribeVpcEndpoints`` for that VPC:

* an ``Interface`` need is met by an interface endpoint of that service in state
  ``available`` with private DNS on (without it, the service's public name does not resolve
  to the endpoint, and the calls leave for the internet the VPC has no route to);
* a ``Gateway`` need is met by gateway endpoints of that service in state ``available`` whose
  route tables, together, include every given route table (all of them may be one endpoint or
  several); without route tables, one available gateway endpoint is enough.

:func:`failure_message` names every unmet need; :func:`response` is the body CloudFormation
expects at the event's ``ResponseURL``, for the :class:`Target` read from any event, even a
malformed one (:func:`response_target`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["Interface", "Gateway"]
KINDS: tuple[Kind, ...] = ("Interface", "Gateway")
REQUEST_TYPES = ("Create", "Update", "Delete")
AVAILABLE = "available"
PHYSICAL_ID_FORMAT = "endpoint-check-{}"
"""The resource's physical id: stable for a VPC, so an update in the same VPC never replaces
it (a new VPC gives a new id, and CloudFormation then deletes the old one: a no-op)."""
MAX_REASON_CHARACTERS = 3000
"""CloudFormation accepts a response of at most 4096 bytes; the reason is cut to fit."""
ADVICE = (
    'create them, or set vpc_endpoints="create" (the environment creates them) or '
    '"unchecked" (they are reached another way)'
)


class EventError(ValueError):
    """The event is not a usable custom resource event of this check."""


@dataclass(frozen=True)
class Need:
    """One endpoint the environment needs: the full service name and the endpoint type."""

    name: str
    """``com.amazonaws.<region>.<service>``."""
    kind: Kind

    def describe(self, route_tables: Sequence[str]) -> str:
        if self.kind == "Interface":
            return f"{self.name} (Interface, private DNS on)"
        if route_tables:
            return f"{self.name} (Gateway, on route tables {', '.join(route_tables)})"
        return f"{self.name} (Gateway)"


@dataclass(frozen=True)
class Request:
    """A Create or Update event's check: what to look for in which VPC."""

    request_type: str
    vpc_id: str
    needs: tuple[Need, ...]
    route_tables: tuple[str, ...]
    """Every route table of the environment's subnets (empty: not known at synth)."""


def _text(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise EventError(f"{where}{key} is missing or not a non-empty string")
    return value


@dataclass(frozen=True)
class Target:
    """Where and for what the response goes: read leniently, so that a malformed event is
    still answered."""

    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    physical_id: str


def response_target(event: Any) -> Target | None:
    """The response's address and ids; None when the event has no ResponseURL (nothing can
    be answered). The physical id is the one CloudFormation holds for a Delete (and an Update
    of a malformed event), ``endpoint-check-<VpcId>`` otherwise."""
    if not isinstance(event, Mapping) or not isinstance(event.get("ResponseURL"), str):
        return None
    properties = event.get("ResourceProperties")
    vpc_id = properties.get("VpcId") if isinstance(properties, Mapping) else None
    held = event.get("PhysicalResourceId")
    if event.get("RequestType") == "Delete" and isinstance(held, str) and held:
        physical_id = held
    elif isinstance(vpc_id, str) and vpc_id:
        physical_id = PHYSICAL_ID_FORMAT.format(vpc_id)
    elif isinstance(held, str) and held:
        physical_id = held
    else:
        physical_id = PHYSICAL_ID_FORMAT.format("invalid")
    return Target(
        response_url=str(event["ResponseURL"]),
        stack_id=str(event.get("StackId", "")),
        request_id=str(event.get("RequestId", "")),
        logical_resource_id=str(event.get("LogicalResourceId", "")),
        physical_id=physical_id,
    )


def is_delete(event: Any) -> bool:
    """A Delete succeeds without a check (and without reading its properties)."""
    return isinstance(event, Mapping) and event.get("RequestType") == "Delete"


def _kind(value: str) -> Kind:
    return "Interface" if value == "Interface" else "Gateway"


def parse_request(event: Any) -> Request:
    """The event as a :class:`Request`; :class:`EventError` names what is missing or wrong."""
    if not isinstance(event, Mapping):
        raise EventError("the event is not a JSON object")
    request_type = _text(event, "RequestType", "")
    if request_type not in REQUEST_TYPES:
        raise EventError(f"RequestType {request_type!r} is not one of {', '.join(REQUEST_TYPES)}")
    properties = event.get("ResourceProperties")
    if not isinstance(properties, Mapping):
        raise EventError("ResourceProperties is missing or not an object")
    where = "ResourceProperties."
    vpc_id = _text(properties, "VpcId", where)
    services = properties.get("Services")
    if not isinstance(services, list):
        raise EventError(f"{where}Services is missing or not a list")
    needs = []
    for index, service in enumerate(services):
        item = f"{where}Services[{index}]."
        if not isinstance(service, Mapping):
            raise EventError(f"{where}Services[{index}] is not an object")
        kind = _text(service, "Kind", item)
        if kind not in KINDS:
            raise EventError(f"{item}Kind {kind!r} is not one of {', '.join(KINDS)}")
        needs.append(Need(_text(service, "Name", item), _kind(kind)))
    route_tables = properties.get("RouteTableIds", [])
    if not isinstance(route_tables, list) or not all(
        isinstance(table, str) and table for table in route_tables
    ):
        raise EventError(f"{where}RouteTableIds is not a list of route table ids")
    return Request(
        request_type=request_type,
        vpc_id=vpc_id,
        needs=tuple(dict.fromkeys(needs)),
        route_tables=tuple(dict.fromkeys(route_tables)),
    )


def parse_previous(event: Any) -> Request | None:
    """An Update's previous properties (``OldResourceProperties``) as a :class:`Request`; None
    for a Create, or when they are missing or unreadable (then every need is checked)."""
    if not isinstance(event, Mapping) or event.get("RequestType") != "Update":
        return None
    try:
        return parse_request(
            {"RequestType": "Update", "ResourceProperties": event.get("OldResourceProperties")}
        )
    except EventError:
        return None


def must_hold(request: Request, previous: Request | None) -> tuple[Need, ...]:
    """The needs whose absence fails the request: all of them on a Create, or when the VPC is
    another; on an Update, only the needs the previous properties did not have (and the
    gateway needs when the route tables changed).

    CloudFormation rolls a failed update back with an Update carrying the old properties: were
    it to fail for an endpoint already required before (removed since, say), the stack would be
    left in UPDATE_ROLLBACK_FAILED. Such an endpoint is reported, not enforced."""
    if previous is None or previous.vpc_id != request.vpc_id:
        return request.needs
    tables_changed = set(previous.route_tables) != set(request.route_tables)
    return tuple(
        need
        for need in request.needs
        if need not in previous.needs or (need.kind == "Gateway" and tables_changed)
    )


def _usable(endpoint: Mapping[str, Any], need: Need) -> bool:
    return (
        endpoint.get("ServiceName") == need.name
        and endpoint.get("VpcEndpointType") == need.kind
        and str(endpoint.get("State", "")).lower() == AVAILABLE
    )


def missing(
    needs: Iterable[Need], endpoints: Iterable[Mapping[str, Any]], route_tables: Sequence[str]
) -> list[Need]:
    """The needs no endpoint meets, in the order given; `endpoints` are DescribeVpcEndpoints'
    ``VpcEndpoints`` for the VPC."""
    found = list(endpoints)
    unmet = []
    for need in needs:
        usable = [endpoint for endpoint in found if _usable(endpoint, need)]
        if need.kind == "Interface":
            met = any(endpoint.get("PrivateDnsEnabled") is True for endpoint in usable)
        else:
            associated = {table for e in usable for table in e.get("RouteTableIds") or []}
            met = bool(usable) and set(route_tables) <= associated
        if not met:
            unmet.append(need)
    return unmet


def failure_message(vpc_id: str, unmet: Sequence[Need], route_tables: Sequence[str]) -> str:
    """Why the deploy fails: every unmet need, and what to do."""
    listed = ", ".join(need.describe(route_tables) for need in unmet)
    return f"private_network: VPC {vpc_id} has no usable endpoint for: {listed}; {ADVICE}"


def success_message(
    vpc_id: str, needs: Sequence[Need], unmet: Sequence[Need] = (), route_tables: Sequence[str] = ()
) -> str:
    if not unmet:
        return f"VPC {vpc_id} has a usable endpoint for each of the {len(needs)} services needed"
    listed = ", ".join(need.describe(route_tables) for need in unmet)
    return (
        f"WARNING: VPC {vpc_id} has no usable endpoint for: {listed}; they were required before "
        "this update, so the update (or its rollback) is not failed for them: "
        f"{ADVICE.replace('create them', 'create them again', 1)}"
    )


def truncate(reason: str) -> str:
    if len(reason) <= MAX_REASON_CHARACTERS:
        return reason
    return reason[: MAX_REASON_CHARACTERS - 3] + "..."


def response(target: Target, *, success: bool, reason: str) -> bytes:
    """The JSON body of the response to CloudFormation (the custom resource contract)."""
    return json.dumps(
        {
            "Status": "SUCCESS" if success else "FAILED",
            "Reason": truncate(reason),
            "PhysicalResourceId": target.physical_id,
            "StackId": target.stack_id,
            "RequestId": target.request_id,
            "LogicalResourceId": target.logical_resource_id,
            "NoEcho": False,
            "Data": {},
        }
    ).encode()
